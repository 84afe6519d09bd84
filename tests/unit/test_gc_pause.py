"""The cyclic collector stays off while any thread summarises a window, and no collection runs
during a drift report however many logged requests it reads."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.monitoring.drift import drift_reports_of
from modelport.monitoring.gc_pause import gc_paused
from modelport.monitoring.predictions import NewEntry, PredictionStore
from modelport.registry import Registry


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_resumes_when_the_last_holder_leaves() -> None:
    entered, release = threading.Event(), threading.Event()

    def other_holder() -> None:
        with gc_paused:
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_holder)
    thread.start()
    assert entered.wait(10)
    with gc_paused:
        release.set()
        thread.join(10)
        assert not gc.isenabled()  # the other holder left; this one still holds
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_resumes_after_an_error() -> None:
    with pytest.raises(ValueError, match="failed report"), gc_paused:
        raise ValueError("a failed report")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with gc_paused:
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


@pytest.mark.usefixtures("collector_on")
def test_no_collection_runs_during_a_drift_report(
    make_settings: Callable[..., Settings],
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    settings = make_settings(prediction_log=True)
    modelport.log_model(iris_logreg, "iris", X[:10], reference_data=X, settings=settings)
    registry = Registry.from_settings(settings)
    try:
        now = time.time()
        outputs = orjson.dumps({"label": [0]}).decode()
        PredictionStore(registry.database).write(
            [
                NewEntry(
                    request_id=f"request-{i}",
                    at=now,
                    protocol="v1",
                    deployment=None,
                    slot=None,
                    model="iris",
                    version=1,
                    unit_id=None,
                    status=200,
                    error=None,
                    latency_ms=0.5,
                    rows=1,
                    shadow=False,
                    inputs=orjson.dumps({"input": [X[i % 150].tolist()]}).decode(),
                    outputs=outputs,
                )
                for i in range(20_000)
            ]
        )
        reports = drift_reports_of(settings, registry)
        collections: list[dict[str, Any]] = []

        def count(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                collections.append(info)

        gc.callbacks.append(count)
        try:
            result = reports.report("iris", 1)
        finally:
            gc.callbacks.remove(count)
        assert result.report is not None
        assert result.report.rows == 20_000
        # without the pause, 115 collections; with it, at most the first one after it ends
        assert len(collections) <= 1
    finally:
        registry.close()
