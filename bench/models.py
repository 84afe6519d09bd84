"""The fixed bench models, and how fast they predict with no server in the way.

Both models are rebuilt from fixed seeds on every run, so two runs (or two machines) time the
same trees and coefficients. The in-process numbers are the ceiling any server can approach:
the gap between them and the HTTP numbers is what the serving stack costs.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
BATCH_SIZES = (1, 64, 1024)


@dataclass(frozen=True, slots=True)
class BenchModel:
    """A fitted estimator plus the rows requests are built from."""

    name: str
    description: str
    estimator: Any
    rows: np.ndarray  # float64 (n, n_features); row 0 is the single-row request body

    @property
    def n_features(self) -> int:
        return int(self.rows.shape[1])


def build_models() -> dict[str, BenchModel]:
    """"small" (LogisticRegression on iris) and "medium" (100-tree HistGradientBoosting)."""
    from sklearn.datasets import load_iris, make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x_iris, y_iris = load_iris(return_X_y=True)
    small = LogisticRegression(max_iter=1000, random_state=SEED).fit(x_iris, y_iris)
    x_med, y_med = make_classification(n_samples=5000, n_features=20, random_state=SEED)
    medium = HistGradientBoostingClassifier(max_iter=100, random_state=SEED).fit(x_med, y_med)
    return {
        "small": BenchModel("small", "LogisticRegression, iris, 4 features", small,
                            np.ascontiguousarray(x_iris, dtype=np.float64)),
        "medium": BenchModel("medium", "HistGradientBoostingClassifier, 100 iterations, "
                             "20 features", medium,
                             np.ascontiguousarray(x_med, dtype=np.float64)),
    }


def register(models: dict[str, BenchModel], home: Path) -> None:
    """Register each model as version 1 in the registry under ``home``."""
    import modelport
    from modelport.config import Settings

    settings = Settings(home=home)
    for model in models.values():
        modelport.log_model(model.estimator, model.name, model.rows[:5], settings=settings)


def check_rows(model: BenchModel, count: int = 8) -> np.ndarray:
    """A few rows spread over the data set, so more than one class shows up in the check."""
    step = max(1, len(model.rows) // count)
    return model.rows[::step][:count]


@dataclass(frozen=True, slots=True)
class InProcessTiming:
    model: str
    rows_per_call: int
    median_us: float
    repeats: int

    @property
    def rows_per_s(self) -> float:
        return self.rows_per_call / (self.median_us / 1e6)


def time_in_process(model: BenchModel, budget_s: float = 1.0,
                    max_repeats: int = 2000) -> list[InProcessTiming]:
    """Median wall time of ``predict_proba`` per batch size, BLAS/OpenMP pinned to 1 thread.

    One thread because the server pins its model threads the same way (MODELPORT_MODEL_THREADS,
    OMP_NUM_THREADS=1): a two-thread number would promise a ceiling the server cannot reach.
    """
    from threadpoolctl import threadpool_limits

    timings = []
    with threadpool_limits(1):
        for size in BATCH_SIZES:
            batch = np.ascontiguousarray(np.resize(model.rows, (size, model.n_features)))
            samples = _repeat(lambda b=batch: model.estimator.predict_proba(b),
                              budget_s, max_repeats)
            timings.append(InProcessTiming(model.name, size,
                                           statistics.median(samples) / 1e3, len(samples)))
    return timings


def _repeat(call: Any, budget_s: float, max_repeats: int, min_repeats: int = 20) -> list[int]:
    """Nanoseconds per call, until the budget or the repeat cap runs out (after a warm-up)."""
    for _ in range(3):
        call()
    samples: list[int] = []
    deadline = time.perf_counter_ns() + int(budget_s * 1e9)
    while len(samples) < max_repeats and (len(samples) < min_repeats
                                          or time.perf_counter_ns() < deadline):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def time_sdk_single_row(model: BenchModel, home: Path, budget_s: float = 1.0) -> InProcessTiming:
    """One row through modelport's own path (signature check + runtime), without HTTP.

    The difference to raw ``predict_proba`` is what the signature conform and output packing
    cost; the difference to the served c=1 latency is HTTP, JSON and the event loop.
    """
    from threadpoolctl import threadpool_limits

    from modelport.config import Settings
    from modelport.sdk import load_model

    loaded = load_model(model.name, settings=Settings(home=home))
    row = model.rows[:1].tolist()  # a JSON-like list, as a request would carry it
    with threadpool_limits(1):
        samples = _repeat(lambda: loaded.predict_outputs(row), budget_s, 2000)
    return InProcessTiming(model.name, 1, statistics.median(samples) / 1e3, len(samples))
