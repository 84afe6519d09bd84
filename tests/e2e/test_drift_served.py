"""Live drift on a real server: reference-like traffic does not drift, shifted traffic drifts
on the shifted feature only, the statistics equal scipy's on the same window, the gauges and
the webhook say so once, and `modelport drift report` writes the report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from tests.webhooks import Receiver


def gauges(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("modelport_feature_drift", "modelport_dataset_drift"))
    }


def drifted(values: dict[Any, float], model: str) -> dict[str, float]:
    return {
        dict(labels)["feature"]: value
        for (name, labels), value in values.items()
        if name == "modelport_feature_drifted" and dict(labels)["model"] == model
    }


def test_shifted_traffic_drifts_on_the_shifted_feature_only(
    live_server: Any,
    make_settings: Callable[..., Settings],
    cli: Any,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
    webhook: Receiver,
    tmp_path: Path,
) -> None:
    X, _ = iris_data
    settings = make_settings(
        prediction_log=True,
        prediction_log_flush_s=0.0,
        drift_interval_s=0.5,
        drift_min_rows=150,  # no verdict on a half-sent window (iris rows are sorted by class)
        alert_webhook_url=webhook.url,
    )
    for name in ("steady", "shifted"):
        modelport.log_model(iris_logreg, name, X[:10], reference_data=X, settings=settings)
    server = live_server(["steady", "shifted"], settings)
    shifted_rows = X.copy()
    shifted_rows[:, 2] += 3.0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for start in range(0, 150, 10):
            for name, rows in (("steady", X), ("shifted", shifted_rows)):
                answer = client.post(
                    f"/v1/models/{name}:predict",
                    json={"instances": rows[start : start + 10].tolist()},
                )
                assert answer.status_code == 200, answer.text

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        values = gauges(server.url)
        if len(drifted(values, "steady")) == 4 and len(drifted(values, "shifted")) == 4:
            break
        time.sleep(0.3)
    assert drifted(values, "steady") == dict.fromkeys(
        ["input[0]", "input[1]", "input[2]", "input[3]"], 0.0
    )
    assert drifted(values, "shifted") == {
        "input[0]": 0.0,
        "input[1]": 0.0,
        "input[2]": 1.0,
        "input[3]": 0.0,
    }
    share = ("modelport_dataset_drift_share", (("model", "shifted"), ("version", "1")))
    assert values[share] == 0.25

    # the statistic that decided is scipy's KS on the same two samples (150 rows: small)
    report = httpx.get(f"{server.url}/api/drift", params={"model": "shifted"}).json()["report"]
    feature = report["features"]["input[2]"]
    assert feature["method"] == "ks"
    ks = feature["statistics"]["ks"]
    expected = stats.ks_2samp(X[:, 2], shifted_rows[:, 2])
    assert ks["value"] == pytest.approx(expected.statistic, rel=1e-12)
    assert ks["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)

    webhook.wait_for(1)
    time.sleep(1.5)  # further computations must not announce it again
    assert [(m["state"], m["model"], m["drifted_features"]) for m in webhook.messages] == [
        ("breached", "shifted", ["input[2]"])
    ]

    page = httpx.get(f"{server.url}/api/drift", params={"model": "shifted", "format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "input[2]" in page.text
    out = tmp_path / "report.html"
    printed = cli(
        "drift", "report", "--model", "shifted", "--window", "1h", "-o", str(out), "--json"
    )
    assert printed.returncode == 0, printed.stderr
    [version] = json.loads(printed.stdout)["versions"]
    assert version["report"]["drifted_features"] == ["input[2]"]
    assert "<svg" in out.read_text()
