"""A batch run's memory does not follow its input: four times the rows (a file several times
the allowance below) leave the run's peak RSS within a fixed allowance of the smaller run's.
The figures are printed (``pytest -s``); bench/batch_scoring.py records them over 20x."""

from __future__ import annotations

import json
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

ALLOWANCE_MIB = 64
"""Growth allowed when the input grows by 192 MiB of float64 (2M to 8M rows of 4 columns): a
third of it, so a run that keeps its input, or its outputs (192 MiB each), still fails. Runs of the
same code differed by -3 to +46 MiB alone and by 57 MiB beside the rest of the suite on two
cores (the threads' malloc arenas and the chunks in flight when the peak is taken)."""
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


def _input(path: Path, rows: int) -> Path:
    """``rows`` random iris-like rows in row groups of 200k, written a group at a time."""
    rng = np.random.default_rng(0)
    schema = pa.schema([(f"f{i}", pa.float64()) for i in range(4)])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 200_000):
            block = rng.random((min(200_000, rows - start), 4)) * 6
            writer.write_table(pa.table({f"f{i}": block[:, i] for i in range(4)}, schema=schema))
    return path


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
    small = _input(tmp_path / "small.parquet", 2_000_000)
    large = _input(tmp_path / "large.parquet", 8_000_000)
    summary_small, peak_small = _peak_kib(settings, small, tmp_path / "out-small")
    summary_large, peak_large = _peak_kib(settings, large, tmp_path / "out-large")
    assert (summary_small["rows"], summary_large["rows"]) == (2_000_000, 8_000_000)
    grown_mib = (peak_large - peak_small) / 1024
    print(f"peak RSS: 2M rows {peak_small / 1024:.0f} MiB, 8M rows {peak_large / 1024:.0f} MiB")
    assert grown_mib < ALLOWANCE_MIB, (peak_small, peak_large)
