"""Batch scoring throughput and memory: ``modelport batch`` (local engine) against the raw
in-process limit, the model's own ``predict_proba`` on the same 1,024-row chunks with no file
reading or writing, for the small and medium models; then the run's peak memory as the
input grows tenfold. Both throughputs vary by tens of percent from one pass to the next on a
shared machine, so each model runs ``--rounds`` interleaved raw/batch rounds (after a raw
warm-up pass) and the table gives the median of each. With ``--engine dask``, the same runs
on a local Dask cluster (``--dask-workers`` processes of one thread) beside them.

Each run is its own process (``modelport batch --json``), so its peak RSS is its own.

The default input is 10M rows, the size batch scoring is for: a run scores two parts at once
except at its start and end, which weigh more on a smaller input (the small model measured
0.79-0.83 of its raw loop over 2M rows, 0.85-0.88 over 10M). A whole run takes about seven
minutes, most of them the medium model's raw loop; ``--models small`` about one.

    .venv/bin/python bench/batch_scoring.py [--models small,medium] [--rows 10000000]
        [--chunk-rows 1024] [--rounds 3] [--engine dask [--dask-workers 2]]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

from models import build_models, register

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,medium")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=["local", "dask"], default="local")
    parser.add_argument("--dask-workers", type=int, default=2)
    args = parser.parse_args()
    models = build_models()
    with tempfile.TemporaryDirectory() as scratch, _cluster(args) as scheduler:
        home = Path(scratch) / "home"
        register(models, home)
        env = {**os.environ, "MODELPORT_HOME": str(home)}
        dask = f" dask ({args.dask_workers} workers) rows/s |" if scheduler else ""
        print(f"| model | rows | raw predict rows/s | modelport batch rows/s | ratio |{dask}")
        print("|---|---:|---:|---:|---:|" + ("---:|" if scheduler else ""))
        for name in args.models.split(","):
            model = models[name]
            source = _input(Path(scratch), name, model.rows, args.rows)
            raw_pass = (model.estimator, model.rows, args.rows, args.chunk_rows)
            _raw_rows_per_s(*raw_pass)  # warm-up
            raws, batches = [], []
            for round_ in range(args.rounds):
                raws.append(_raw_rows_per_s(*raw_pass))
                out = Path(scratch) / f"out-{name}-{round_}"
                summary, _ = _batch(env, name, source, out, args.chunk_rows)
                batches.append(summary["rows"] / summary["seconds"])
            raw, ours = float(np.median(raws)), float(np.median(batches))
            row = f"| {name} | {args.rows:,} | {raw:,.0f} | {ours:,.0f} | {ours / raw:.2f} |"
            if scheduler:
                out = Path(scratch) / f"dask-{name}"
                on_dask, _ = _batch(env, name, source, out, args.chunk_rows, "--engine",
                                    "dask", "--scheduler", scheduler)  # fmt: skip
                row += f" {on_dask['rows'] / on_dask['seconds']:,.0f} |"
            print(row)
        print("\n| model | rows | peak RSS MiB |\n|---|---:|---:|")
        for rows in (args.rows // 10, args.rows, args.rows * 2):
            source = _input(Path(scratch), "small", models["small"].rows, rows)
            _, peak = _batch(env, "small", source, Path(scratch) / f"rss-{rows}", args.chunk_rows)
            print(f"| small | {rows:,} | {peak / 1024:.0f} |")


@contextlib.contextmanager
def _cluster(args: argparse.Namespace) -> Iterator[str | None]:
    """The scheduler address of a local Dask cluster, with ``--engine dask``."""
    if args.engine != "dask":
        yield None
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=args.dask_workers, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def _input(folder: Path, name: str, features: np.ndarray, rows: int) -> Path:
    path = folder / f"{name}-{rows}.parquet"
    picked = features[np.random.default_rng(0).integers(0, len(features), rows)]
    columns = {"row_id": np.arange(rows), **{f"f{i}": picked[:, i] for i in range(picked.shape[1])}}
    pq.write_table(pa.table(columns), path, row_group_size=100_000)
    return path


def _raw_rows_per_s(estimator: object, features: np.ndarray, rows: int, chunk: int) -> float:
    picked = features[np.random.default_rng(0).integers(0, len(features), rows)]
    with threadpool_limits(1):
        started = time.perf_counter()
        for start in range(0, rows, chunk):
            estimator.predict_proba(picked[start : start + chunk])  # type: ignore[attr-defined]
        return rows / (time.perf_counter() - started)


def _batch(
    env: dict[str, str], model: str, source: Path, out: Path, chunk: int, *engine: str
) -> tuple[dict[str, float], int]:
    """The run's summary and its peak RSS in KiB."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, "batch", "-m", model, "-i", str(source), "-o",
         str(out), "--passthrough", "row_id", "--chunk-rows", str(chunk), "--json", *engine],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout), int(done.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
