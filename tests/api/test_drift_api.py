"""The drift API on the real app: a version's reference summary, drift with its reasons when
there is no verdict, and the errors of a bad window or an unknown model."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(prediction_log=True, prediction_log_flush_s=0, drift_min_rows=5)


def test_reference_summary_and_its_absence(
    serve: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], reference_data=X, settings=settings)
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris/1"]) as client:
        summary = client.get("/api/models/iris/versions/1/reference")
        assert summary.status_code == 200, summary.text
        body = summary.json()
        assert body["rows"] == 150
        assert sorted(body["features"]) == ["input[0]", "input[1]", "input[2]", "input[3]"]
        assert body["predictions"]["kind"] == "categorical"
        assert sum(body["predictions"]["counts"].values()) == 150

        missing = client.get("/api/models/iris/versions/2/reference")
        assert missing.status_code == 404
        assert missing.json()["code"] == "reference_not_found"
        assert client.get("/api/models/nope/versions/1/reference").status_code == 404

        no_reference = client.get("/api/drift", params={"model": "iris/2"}).json()
        assert no_reference["report"] is None
        assert no_reference["reason"] == "iris/2 has no reference profile"
        too_few = client.get("/api/drift", params={"model": "iris/1"}).json()
        assert too_few["report"] is None
        assert too_few["reason"].startswith("0 logged rows of iris/1")

        for start in range(0, 10, 2):
            client.post(
                "/v1/models/iris:predict",
                json={"instances": X[start : start + 2].tolist()},
            )
        deadline = time.monotonic() + 10
        while (result := client.get("/api/drift", params={"model": "iris/1"}).json())[
            "report"
        ] is None:
            assert time.monotonic() < deadline, result
            time.sleep(0.05)
        assert result["report"]["rows"] == 10
        html = client.get("/api/drift", params={"model": "iris/1", "format": "html"})
        assert html.status_code == 200
        assert html.text.count("<svg") == 5  # four features and the predictions

        assert (
            client.get("/api/drift", params={"model": "iris", "window": "soon"}).status_code == 422
        )
        assert client.get("/api/drift", params={"model": "nope"}).status_code == 404
        assert (
            client.get("/api/drift", params={"model": "iris", "format": "pdf"}).status_code == 422
        )
