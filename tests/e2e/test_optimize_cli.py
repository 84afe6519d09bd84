"""`modelport optimize` as a user runs it: a subprocess, its printout, exit codes, messages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import LabelSpreading

import modelport
from modelport.config import Settings


def test_optimize_registers_an_onnx_version_and_moves_the_alias(
    cli: Any,
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:5], metrics={"accuracy": 0.97}, settings=settings)

    result = cli("optimize", "iris", "--rows", "128", "--alias", "production")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"optimized iris/1 -> iris/2 \(onnx\): labels identical on 128 rows, "
        r"max \|Δp\| \S+; in-process predict 1 row: \d+ µs -> \d+ µs, "
        r"production -> v2\n",
        result.stdout,
    ), result.stdout

    as_json = cli("optimize", "iris/1", "--json", "--atol", "1e-4")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert (report["version"]["version"], report["version"]["framework"]) == (3, "onnx")
    assert report["version"]["lineage"]["source_version"] == "iris/1"
    assert report["version"]["metrics"] == {"accuracy": 0.97}
    assert report["parity"]["rows"] == 512
    assert report["parity"]["atol"] == 1e-4
    assert set(report["latency_us"]) == {"source", "onnx"}

    sample = tmp_path / "rows.json"
    sample.write_text(json.dumps(X.tolist()))
    predicted = cli("predict", "iris@production", "--input", str(sample))
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["predictions"] == iris_logreg.predict(X).tolist()


def test_a_refusal_says_why_and_changes_nothing(
    cli: Any, settings: Settings, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris_data
    spreading = LabelSpreading().fit(X, y)  # skl2onnx has no converter for it
    modelport.log_model(spreading, "spread", X[:5], settings=settings)

    refused = cli("optimize", "spread")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: Conversion failed: skl2onnx "), refused.stderr
    assert "cannot convert LabelSpreading" in refused.stderr
    assert "serve spread/1 as is" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    versions = json.loads(cli("versions", "spread", "--json").stdout)
    assert [v["version"] for v in versions] == [1]
    assert cli("optimize", "spread", "--rows", "0").returncode == 2
