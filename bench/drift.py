"""What a drift report costs: a window of traffic against a reference profile.

A reference of 10,000 rows (20 numeric features and 2 categorical ones by default) is captured
into a profile, which goes through its stored form (JSON and sample bytes) like a registered
one; then a window of 1,000,000 rows is compared with it: every statistic of every feature
(PSI, JS, KS, Wasserstein and missing rate, or PSI, JS, chi-square and missing rate), one
feature shifted. The table gives the median of the runs, wall and CPU; the target is 10 s for
the numeric report on two cores. Single-feature lines show where the time goes, and scipy's own
Wasserstein distance next to the one the report uses.

    PYTHONPATH=src .venv/bin/python bench/drift.py [--rows N] [--numeric N] [--categorical N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

import numpy as np
from scipy import stats

from modelport.monitoring.profile import ReferenceProfile, ReferenceSample, capture, compare
from modelport.monitoring.statistics import drift_against, wasserstein_of_sorted
from report import system_info

TARGET_S = 10.0
CATEGORIES = np.array([f"category-{i:02d}" for i in range(12)])


def columns(seed: int, rows: int, numeric: int, categorical: int) -> dict[str, np.ndarray]:
    """Numeric features of several shapes (one shifted in the window), with 1 % missing."""
    rng = np.random.default_rng(seed)
    shift = 0.3 if seed else 0.0
    data: dict[str, np.ndarray] = {}
    for i in range(numeric):
        shape = i % 3
        if shape == 0:
            values = rng.normal(i, 1 + i / 10, rows)
        elif shape == 1:
            values = rng.lognormal(1, 0.6, rows)
        else:
            values = rng.poisson(3 + i % 5, rows).astype(np.float64)
        if i == 0:
            values = values + shift
        values[rng.random(rows) < 0.01] = np.nan
        data[f"num{i:02d}"] = values
    weights = np.linspace(1, 3, CATEGORIES.size)
    for i in range(categorical):
        data[f"cat{i}"] = rng.choice(CATEGORIES, rows, p=weights / weights.sum())
    return data


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `repeat` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the window")
    parser.add_argument("--reference", type=int, default=10_000, help="rows in the reference")
    parser.add_argument("--numeric", type=int, default=20)
    parser.add_argument("--categorical", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs per line (median)")
    args = parser.parse_args(argv)
    info = system_info()
    print(
        f"{info['date']}  {info['cpu_model']}  nproc={info['nproc']}  "
        f"loadavg={info['loadavg']}  python {info['python']}  numpy {info['numpy']}  "
        f"scipy {version('scipy')}  modelport {info['git_commit']}"
    )
    reference = columns(0, args.reference, args.numeric, args.categorical)
    window = columns(1, args.rows, args.numeric, args.categorical)
    numeric = {k: v for k, v in window.items() if k.startswith("num")}
    categorical = [k for k in window if k.startswith("cat")]

    def stored() -> ReferenceProfile:
        profile = capture(reference)
        data = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
        return ReferenceProfile.from_dict(
            data, ReferenceSample.from_bytes(profile.sample.to_bytes())
        )

    profile = stored()
    report = compare(profile, window)
    lines: list[tuple[str, int, int, Callable[[], object]]] = [
        ("capture + store + load profile", args.reference, len(reference), stored),
        ("report, numeric features", args.rows, len(numeric), lambda: compare(profile, numeric)),
        ("report, all features", args.rows, len(window), lambda: compare(profile, window)),
    ]
    first, ref_sample = "num01", profile.sample.columns["num01"]
    ref_sorted = np.sort(ref_sample[np.isfinite(ref_sample)])
    cur = window[first][np.isfinite(window[first])]
    summary = profile.features[first]
    lines += [
        ("  one numeric feature", args.rows, 1, lambda: drift_against(summary, ref_sample, cur)),
        ("    KS (scipy ks_2samp)", args.rows, 1, lambda: stats.ks_2samp(ref_sorted, cur)),
        (
            "    Wasserstein, as the report (sort + merge)",
            args.rows,
            1,
            lambda: wasserstein_of_sorted(ref_sorted, np.sort(cur)),
        ),
        (
            "    Wasserstein, scipy wasserstein_distance",
            args.rows,
            1,
            lambda: stats.wasserstein_distance(ref_sorted, cur),
        ),
    ]
    if categorical:
        name = categorical[0]
        lines.append(
            (
                "  one categorical feature",
                args.rows,
                1,
                lambda: drift_against(
                    profile.features[name], profile.sample.columns[name], window[name]
                ),
            )
        )
    print(f"{'step':46} {'rows':>9} {'features':>8} {'wall s':>7} {'CPU s':>7} {'ms/feature':>10}")
    walls = {}
    for label, rows, features, work in lines:
        wall, cpu = timed(work, args.repeat)
        walls[label] = wall
        print(
            f"{label:46} {rows:9d} {features:8d} {wall:7.2f} {cpu:7.2f} "
            f"{wall / features * 1000:10.0f}"
        )
    met = walls["report, numeric features"] <= TARGET_S
    print(
        f"drifted: {', '.join(report.drifted_features) or 'none'} (num00 is shifted); "
        f"numeric report <= {TARGET_S:g} s: {'met' if met else 'MISSED'}; "
        f"load average now {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
