"""What one small batch costs the "medium" HistGradientBoosting model: the estimator's
``predict_proba`` against the flat trees modelport answers small batches with
(``modelport.runtimes.hist_gradient_boosting``), and where the flat trees stop being faster.

One thread (threadpoolctl), as the server runs models; the two paths are timed in interleaved
rounds, median of every call; the outputs are checked equal before anything is timed.

    .venv/bin/python bench/hgb_predict.py [--budget 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

from modelport.runtimes.batch import Batch
from modelport.runtimes.hist_gradient_boosting import (
    MAX_ROWS,
    SmallBatchPredictor,
    small_batch_predictor,
)
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec
from models import build_models

ROWS = (1, 2, 4, 8, 16, 32, 64)
ROUNDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per cell")
    budget = parser.parse_args().budget
    model = build_models()["medium"]
    signature = Signature(
        SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, model.n_features)),)
    )
    predictor = small_batch_predictor(model.estimator, signature, max_rows=max(ROWS))
    assert predictor is not None, "the medium model should take the fast path"
    print(f"medium: {model.description}; the runtime takes the fast path up to {MAX_ROWS} rows")
    print(f"{'rows':>5} {'estimator µs':>13} {'fast path µs':>13} {'speed-up':>9}")
    with threadpool_limits(1):
        for rows in ROWS:
            estimator_us, fast_us = _time(model.estimator, predictor, model.rows[:rows], budget)
            print(
                f"{rows:>5} {estimator_us:>13.0f} {fast_us:>13.0f} {estimator_us / fast_us:>8.1f}x"
            )


def _time(
    estimator: Any, predictor: SmallBatchPredictor, rows: np.ndarray, budget_s: float
) -> list[float]:
    """Both paths on the same rows, once checked to answer the same."""
    batch = Batch.of({"input": np.ascontiguousarray(rows)})
    outputs = predictor.predict(batch)
    assert outputs is not None
    np.testing.assert_array_equal(outputs["probabilities"], estimator.predict_proba(rows))
    return _interleaved(
        [lambda: estimator.predict_proba(rows), lambda: predictor.predict(batch)], budget_s
    )


def _interleaved(calls: list[Callable[[], object]], budget_s: float) -> list[float]:
    """Median µs per call of each, timed in alternating rounds so a hiccup hits all alike."""
    samples: list[list[int]] = [[] for _ in calls]
    for _ in range(ROUNDS):
        for call, found in zip(calls, samples, strict=True):
            call()
            deadline = time.perf_counter_ns() + int(budget_s / ROUNDS * 1e9)
            while time.perf_counter_ns() < deadline or len(found) < 5:
                start = time.perf_counter_ns()
                call()
                found.append(time.perf_counter_ns() - start)
    return [statistics.median(found) / 1e3 for found in samples]


if __name__ == "__main__":
    main()
