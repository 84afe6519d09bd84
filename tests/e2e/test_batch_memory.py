"""A batch run's memory does not follow its input: four times the rows (several times the
allowance below) leave the run's peak RSS within a fixed allowance of the smaller run's.
The figures are printed (``pytest -s``); bench/batch_scoring.py records them over 20x."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from tests.e2e.conftest import settings_env

ALLOWANCE_MIB = 128
"""Growth allowed when the input grows by 768 MiB of float64 (8M to 32M rows of 4 columns): a
sixth of it, so a run that keeps its input, or its outputs, still fails. A run's RSS climbs for
about 8M rows before it levels off (the threads' malloc arenas and mimalloc's pages fill) and then
wanders by some 40 MiB, so both runs are long enough to level off: from 2M to 8M rows, runs of the
same code had differed by -3 to +95 MiB."""
# The run's own peak (VmHWM): ru_maxrss would report the parent's RSS at fork when that is
# larger, since Linux keeps it across exec.
_MEASURE = (
    "import runpy, sys\n"
    "sys.argv = ['modelport', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('modelport', run_name='__main__')\n"
    "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
    "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
    "print(peak.split()[1], file=sys.stderr)\n"
)


def _inputs(folder: Path, rows: int, copies: int) -> tuple[Path, Path]:
    """A folder with one file of ``rows`` random iris-like rows (row groups of 200k, written a
    group at a time) and a folder of ``copies`` hard links to that file."""
    rng = np.random.default_rng(0)
    schema = pa.schema([(f"f{i}", pa.float64()) for i in range(4)])
    one, many = folder / "one", folder / "many"
    one.mkdir()
    many.mkdir()
    with pq.ParquetWriter(one / "part-0.parquet", schema) as writer:
        for start in range(0, rows, 200_000):
            block = rng.random((min(200_000, rows - start), 4)) * 6
            writer.write_table(pa.table({f"f{i}": block[:, i] for i in range(4)}, schema=schema))
    for copy in range(copies):
        os.link(one / "part-0.parquet", many / f"part-{copy}.parquet")
    return one, many


def _peak_kib(settings: Settings, source: Path, out: Path) -> tuple[dict[str, Any], int]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, "batch", "-m", "iris", "-i", str(source), "-o",
         str(out), "--json"],
        env=settings_env(settings), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), int(done.stderr.strip().splitlines()[-1])


def test_four_times_the_rows_stay_within_a_fixed_memory_allowance(
    settings: Settings, tmp_path: Path, iris_logreg: LogisticRegression, iris_data: Any
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    small, large = _inputs(tmp_path, 8_000_000, copies=4)
    summary_small, peak_small = _peak_kib(settings, small, tmp_path / "out-small")
    summary_large, peak_large = _peak_kib(settings, large, tmp_path / "out-large")
    assert (summary_small["rows"], summary_large["rows"]) == (8_000_000, 32_000_000)
    grown_mib = (peak_large - peak_small) / 1024
    print(f"peak RSS: 8M rows {peak_small / 1024:.0f} MiB, 32M rows {peak_large / 1024:.0f} MiB")
    assert grown_mib < ALLOWANCE_MIB, (peak_small, peak_large)
