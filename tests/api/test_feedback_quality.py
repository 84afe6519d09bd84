"""Feedback joined to logged predictions gives each version's quality: every metric equals
scikit-learn's on the same rows, for a classifier and a regressor; feedback by request, by
row, by unit; unmatched feedback is kept and joins once its request is logged."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics
from sklearn.linear_model import LogisticRegression, Ridge

import modelport
from modelport.config import Settings
from tests.webhooks import Receiver


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        prediction_log=True,
        prediction_log_flush_s=0,
        quality_interval_s=0.2,
        drift_interval_s=0,
    )


def logged(client: Any, count: int) -> None:
    """The log is written off the request's path: wait until ``count`` requests are in it."""
    deadline = time.monotonic() + 10
    while len(client.get("/api/predictions", params={"limit": 1000}).json()["predictions"]) < count:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def gauge(client: Any, model: str, metric: str) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "modelport_model_quality" and sample.labels == {
                "model": model,
                "version": "1",
                "metric": metric,
            }:
                return float(sample.value)
    return None


def test_classifier_quality_equals_sklearn(
    serve: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    rows = np.random.default_rng(7).permutation(len(X))[:60]
    truth = y[rows].copy()
    truth[:6] = (truth[:6] + 1) % 3  # some answers are wrong
    with serve(
        ["iris"], settings=settings.model_copy(update={"allow_remote_admin": True})
    ) as client:
        # 20 requests of 3 rows; units u0..u19
        for n in range(20):
            client.post(
                "/v1/models/iris:predict",
                json={"instances": X[rows[3 * n : 3 * n + 3]].tolist()},
                headers={"x-request-id": f"req-{n}", "x-unit-id": f"u{n}"},
            )
        logged(client, 20)
        # request 0: one truth per row; requests 1..9 row by row in one batch;
        # requests 10..19 by unit id, only their first row
        first = client.post(
            "/v1/feedback", json={"request_id": "req-0", "truths": truth[:3].tolist()}
        )
        assert first.json() == {"accepted": 3, "unmatched": 0}
        batch = [
            {"request_id": f"req-{n}", "row": r, "truth": int(truth[3 * n + r])}
            for n in range(1, 10)
            for r in range(3)
        ]
        batch += [{"unit_id": f"u{n}", "truth": int(truth[3 * n])} for n in range(10, 20)]
        batch.append({"request_id": "req-not-logged", "truth": 1})
        answer = client.post("/v1/feedback", json={"feedback": batch})
        assert answer.json() == {"accepted": 38, "unmatched": 1}

        quality = client.get("/api/quality", params={"model": "iris"}).json()["quality"]
        labelled = list(range(30)) + [3 * n for n in range(10, 20)]
        outputs = iris_logreg.predict(X[rows[labelled]])
        proba = iris_logreg.predict_proba(X[rows[labelled]])
        expected_truth = truth[labelled]
        assert quality["kind"] == "classification"
        assert quality["rows"] == 40
        got = quality["metrics"]
        assert got["accuracy"] == pytest.approx(metrics.accuracy_score(expected_truth, outputs))
        assert got["f1"] == pytest.approx(
            metrics.f1_score(expected_truth, outputs, average="macro")
        )
        assert got["precision"] == pytest.approx(
            metrics.precision_score(expected_truth, outputs, average="macro", zero_division=0)
        )
        assert got["recall"] == pytest.approx(
            metrics.recall_score(expected_truth, outputs, average="macro")
        )
        assert got["log_loss"] == pytest.approx(metrics.log_loss(expected_truth, proba))
        assert got["roc_auc"] == pytest.approx(
            metrics.roc_auc_score(expected_truth, proba, multi_class="ovr", average="macro")
        )

        # a newer truth for the same request and row replaces the older one
        client.post(
            "/v1/feedback", json={"request_id": "req-0", "row": 0, "truth": int(outputs[0])}
        )
        again = client.get("/api/quality", params={"model": "iris"}).json()["quality"]
        assert again["rows"] == 40

        # the watch recomputes on its schedule: its gauge catches up with the newer truth
        deadline = time.monotonic() + 10
        expected = pytest.approx(again["metrics"]["accuracy"])
        while gauge(client, "iris", "accuracy") != expected:
            assert time.monotonic() < deadline, gauge(client, "iris", "accuracy")
            time.sleep(0.05)


def test_regressor_quality_and_bad_feedback(serve: Any, settings: Settings) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
    model = Ridge().fit(X, y)
    modelport.log_model(model, "price", X[:10], settings=settings)
    with serve(["price"]) as client:
        for n in range(10):
            client.post(
                "/v1/models/price:predict",
                json={"instances": X[4 * n : 4 * n + 4].tolist()},
                headers={"x-request-id": f"r{n}"},
            )
        deadline = time.monotonic() + 10
        feedback = [
            {"request_id": f"r{n}", "truths": y[4 * n : 4 * n + 4].tolist()} for n in range(10)
        ]
        while client.post("/v1/feedback", json={"feedback": feedback}).json()["unmatched"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        quality = client.get("/api/quality", params={"model": "price", "window": "1h"}).json()
        predicted = model.predict(X[:40])
        got = quality["quality"]["metrics"]
        assert quality["quality"]["kind"] == "regression"
        assert got["mae"] == pytest.approx(metrics.mean_absolute_error(y[:40], predicted))
        assert got["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y[:40], predicted)))
        assert got["r2"] == pytest.approx(metrics.r2_score(y[:40], predicted))

        for bad, pointer in (
            ({"truth": 1}, ""),
            ({"request_id": "r1", "unit_id": "u", "truth": 1}, ""),
            ({"request_id": "r1"}, ""),
            ({"request_id": "r1", "truth": 1, "row": -1}, "/feedback/0/row"),
            ({"feedback": []}, "/feedback"),
            (
                {"feedback": [{"request_id": "r1", "truth": 1, "colour": "red"}]},
                "/feedback/0/colour",
            ),
        ):
            answer = client.post("/v1/feedback", json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            if pointer:
                assert pointer in [e["pointer"] for e in answer.json()["errors"]], answer.text
        assert client.post("/v1/feedback", content=b"{nope").status_code in (400, 422)
        assert client.get("/api/quality", params={"model": "nope"}).status_code == 404


def test_a_quality_breach_is_announced_once_and_its_recovery_too(
    serve: Any,
    settings: Settings,
    webhook: Receiver,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    limited = settings.model_copy(
        update={
            "allow_remote_admin": True,
            "quality_limits": {"accuracy": 0.9, "log_loss": 5.0},
            "quality_min_rows": 30,
            "alert_webhook_url": webhook.url,
        }
    )
    with serve(["iris"], settings=limited) as client:
        labels = []
        for n in range(10):
            answer = client.post(
                "/v1/models/iris:predict",
                json={"instances": X[15 * n : 15 * n + 3].tolist()},
                headers={"x-request-id": f"req-{n}"},
            )
            labels.append(answer.json()["predictions"])
        logged(client, 10)

        def send(n: int, truths: list[int]) -> None:
            answer = client.post("/v1/feedback", json={"request_id": f"req-{n}", "truths": truths})
            assert answer.json()["accepted"] == 3

        def verdict() -> Any:
            return client.get("/api/quality", params={"model": "iris"}).json()["breaches"]

        wrong = [[(label + 1) % 3 for label in row] for row in labels]
        for n in range(3):  # 9 rows, all wrong: too few for a verdict
            send(n, wrong[n])
        assert verdict() is None
        for n in range(3, 10):  # 30 rows, 9 wrong: accuracy 0.7
            send(n, labels[n])
        [breach] = verdict()
        assert breach == {"metric": "accuracy", "value": 0.7, "limit": 0.9, "bound": "floor"}
        [message] = webhook.wait_for(1)
        assert (message["event"], message["state"], message["model"]) == (
            "quality",
            "breached",
            "iris",
        )
        assert message["breaches"] == [breach]
        assert message["report"] == "/api/quality?model=iris%2F1"

        for n in range(3):  # the right truths replace the wrong ones
            send(n, labels[n])
        assert verdict() == []
        messages = webhook.wait_for(2)
        time.sleep(0.5)  # further computations announce nothing more
        assert [m["state"] for m in messages] == ["breached", "recovered"]
        assert messages[1]["metrics"]["accuracy"] == 1.0
