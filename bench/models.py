"""The fixed bench models, and how fast they predict with no server in the way.

Both models are rebuilt from fixed seeds on every run, so two runs (or two machines) time the
same trees and coefficients. The in-process numbers are the ceiling any server can approach:
the gap between them and the HTTP numbers is what the serving stack costs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
    """ "small" (LogisticRegression on iris) and "medium" (100-tree HistGradientBoosting)."""
    from sklearn.datasets import load_iris, make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x_iris, y_iris = load_iris(return_X_y=True)
    small = LogisticRegression(max_iter=1000, random_state=SEED).fit(x_iris, y_iris)
    x_med, y_med = make_classification(n_samples=5000, n_features=20, random_state=SEED)
    medium = HistGradientBoostingClassifier(max_iter=100, random_state=SEED).fit(x_med, y_med)
    return {
        "small": BenchModel(
            "small",
            "LogisticRegression, iris, 4 features",
            small,
            np.ascontiguousarray(x_iris, dtype=np.float64),
        ),
        "medium": BenchModel(
            "medium",
            "HistGradientBoostingClassifier, 100 iterations, 20 features",
            medium,
            np.ascontiguousarray(x_med, dtype=np.float64),
        ),
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
    path: str  # "predict_proba" (the estimator alone) or "runtime" (modelport's call path)
    rows_per_call: int
    median_us: float
    repeats: int

    @property
    def rows_per_s(self) -> float:
        return self.rows_per_call / (self.median_us / 1e6)


def time_in_process(
    model: BenchModel, home: Path, budget_s: float = 1.0, rounds: int = 5, max_repeats: int = 2000
) -> list[InProcessTiming]:
    """Median wall time per call, BLAS/OpenMP pinned to one thread, calls interleaved.

    One thread because the server pins its model threads the same way (MODELPORT_MODEL_THREADS,
    OMP_NUM_THREADS=1): a two-thread number would promise a ceiling the server cannot reach.
    The lines are timed in ``rounds`` interleaved slices, not one after the other, so a
    second-long hiccup of the machine spreads over every line instead of doubling one of them.
    """
    from threadpoolctl import threadpool_limits

    calls = {("predict_proba", size): _proba_call(model, size) for size in BATCH_SIZES}
    calls["runtime", 1] = _runtime_call(model, home)
    samples: dict[tuple[str, int], list[int]] = {key: [] for key in calls}
    with threadpool_limits(1):
        for _ in range(rounds):
            for key, call in calls.items():
                samples[key] += _repeat(call, budget_s / rounds, max_repeats // rounds)
    return [
        InProcessTiming(model.name, path, size, statistics.median(found) / 1e3, len(found))
        for (path, size), found in samples.items()
    ]


def _proba_call(model: BenchModel, size: int) -> Callable[[], object]:
    batch = np.ascontiguousarray(np.resize(model.rows, (size, model.n_features)))
    return lambda: model.estimator.predict_proba(batch)


def _runtime_call(model: BenchModel, home: Path) -> Callable[[], object]:
    """One row through modelport's own path (signature check + runtime), without HTTP.

    The difference to raw ``predict_proba`` is what the signature conform and output packing
    cost; the difference to the served c=1 latency is HTTP, JSON and the event loop.
    """
    from modelport.config import Settings
    from modelport.sdk import load_model

    loaded = load_model(model.name, settings=Settings(home=home))
    row = model.rows[:1].tolist()  # a JSON-like list, as a request would carry it
    return lambda: loaded.predict_outputs(row)


def _repeat(
    call: Callable[[], object], budget_s: float, max_repeats: int, min_repeats: int = 5
) -> list[int]:
    """Nanoseconds per call, until the budget or the repeat cap runs out (after a warm-up)."""
    for _ in range(3):
        call()
    samples: list[int] = []
    deadline = time.perf_counter_ns() + int(budget_s * 1e9)
    while len(samples) < max_repeats and (
        len(samples) < min_repeats or time.perf_counter_ns() < deadline
    ):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples
