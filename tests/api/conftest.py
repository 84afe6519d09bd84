"""API tier: the real app in-process (Starlette TestClient runs its lifespan), real SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from starlette.testclient import TestClient

import modelport
from modelport.config import Settings
from modelport.serving import create_app

ServeFactory = Callable[..., "contextmanager[TestClient]"]


@contextmanager
def serving(
    settings: Settings, models: list[str], *, wait_ready: bool = True, timeout_s: float = 30.0
) -> Iterator[TestClient]:
    """A running app serving ``models``; by default returns once /readyz says ready.

    ``wait_ready=False`` also lets the app start when a model cannot be loaded.
    """
    if not wait_ready:
        settings = settings.model_copy(update={"wait_for_models": True})
    app = create_app(settings, models, metrics_registry=CollectorRegistry())
    # a loopback name, as a real client of a loopback server sends (the Host check)
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        deadline = time.monotonic() + timeout_s
        while wait_ready and client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(client.get("/api/serving").text)
            time.sleep(0.05)
        yield client


@pytest.fixture
def serve(settings: Settings) -> Callable[..., contextmanager[TestClient]]:
    """``with serve(["iris"]) as client:`` — the app on this test's own home folder."""

    def factory(models: list[str], **kwargs: object) -> contextmanager[TestClient]:
        return serving(kwargs.pop("settings", settings), models, **kwargs)  # type: ignore[arg-type]

    return factory  # type: ignore[return-value]


@pytest.fixture
def iris_served(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """The iris LogisticRegression registered as ``iris/1``; returns every iris row."""
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    return X


@pytest.fixture
def mixed_served(
    settings: Settings, mixed_pipeline: Pipeline, mixed_frame: tuple[pd.DataFrame, np.ndarray]
) -> pd.DataFrame:
    """The mixed-type ColumnTransformer pipeline registered as ``mixed/1``; returns its frame."""
    frame, _ = mixed_frame
    modelport.log_model(mixed_pipeline, "mixed", frame.head(20), settings=settings)
    return frame
