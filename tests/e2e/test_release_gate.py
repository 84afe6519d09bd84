"""`modelport check` through the real CLI: a registry in this test's home, real fitted models,
exit codes and the checks' verdicts as a release pipeline would see them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.registry import Registry

Cli = Callable[..., subprocess.CompletedProcess[str]]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CARD = [
    "--description",
    "Iris species from flower measurements.",
    "--intended-use",
    "Teaching demos.",
    "--limitations",
    "Three species only.",
    "--training-data",
    "Fisher's iris data.",
    "--ethical-considerations",
    "None known: no personal data.",
    "--owner",
    "ml-team@example.com",
]


@pytest.fixture
def iris_frame(iris_data: tuple[np.ndarray, np.ndarray]) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = iris_data
    return pd.DataFrame(X, columns=FEATURES), y


@pytest.fixture
def production(
    settings: Settings, registry: Registry, iris_frame: tuple[pd.DataFrame, np.ndarray]
) -> LogisticRegression:
    """``iris/1`` at ``iris@production``: a LogisticRegression on named columns."""
    frame, y = iris_frame
    model = LogisticRegression(max_iter=500).fit(frame, y)
    modelport.log_model(model, "iris", frame.head(20), settings=settings)
    registry.set_alias("iris", "production", 1)
    return model


@pytest.fixture
def holdout(tmp_path: Path, iris_frame: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, y = iris_frame
    path = tmp_path / "holdout.csv"
    frame.assign(species=y).to_csv(path, index=False)
    return path


def _check(
    cli: Cli, version: str, *extra: str, against: str = "iris@production"
) -> tuple[int, dict[str, Any]]:
    done = cli("check", version, "--against", against, *extra, "--json")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}


def _statuses(checks: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def test_an_equal_model_passes_every_check_and_its_card_renders(
    cli: Cli,
    settings: Settings,
    production: LogisticRegression,
    holdout: Path,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
    tmp_path: Path,
) -> None:
    modelport.log_model(production, "iris", iris_frame[0].head(20), settings=settings)
    assert cli("card", "edit", "iris/2", *CARD).returncode == 0
    data = ("--data", str(holdout), "--label", "species")
    code, checks = _check(cli, "iris/2", *data)
    assert code == 0, checks
    assert set(_statuses(checks).values()) == {"pass"}
    assert "accuracy" in checks["quality"]["detail"]
    assert "p99" in checks["latency"]["detail"]

    table = cli("check", "iris/2", "--against", "iris@production", *data)
    assert table.returncode == 0, table.stderr
    assert "release gate: iris/2 against iris/1" in table.stdout

    card = cli("card", "iris/2")
    assert card.returncode == 0, card.stderr
    assert card.stdout.startswith("# Model card: iris/2")
    assert "Teaching demos." in card.stdout
    assert "| sepal\\_length | float64 | \\[N\\] | no |" in card.stdout
    assert cli("card", "--html", "iris/2").stdout.startswith("<!doctype html>")
    page = tmp_path / "card.html"
    assert cli("card", "show", "iris/2", "--html", "-o", str(page)).returncode == 0
    assert "<h2>Intended use</h2><p>Teaching demos.</p>" in page.read_text()


def test_a_worse_model_fails_the_quality_check(
    cli: Cli,
    settings: Settings,
    production: LogisticRegression,
    holdout: Path,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, y = iris_frame
    shuffled = np.random.default_rng(0).permutation(y)
    worse = LogisticRegression(max_iter=500).fit(frame, shuffled)
    modelport.log_model(worse, "iris", frame.head(20), settings=settings)
    cli("card", "edit", "iris/2", *CARD)
    code, checks = _check(cli, "iris/2", "--data", str(holdout), "--label", "species")
    assert code == 1
    assert _statuses(checks) == {
        "integrity": "pass",
        "signature": "pass",
        "quality": "fail",
        "latency": "pass",
        "card": "pass",
    }
    assert "worse than iris/1" in checks["quality"]["detail"]
    assert "accuracy" in checks["quality"]["detail"]

    human = cli("check", "iris/2", "--against", "iris@production")
    assert human.returncode == 0  # without data, quality is skipped: nothing else is wrong
    assert "no hold-out data" in human.stdout


def test_a_model_with_another_input_column_breaks_the_signature(
    cli: Cli,
    settings: Settings,
    production: LogisticRegression,
    holdout: Path,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, y = iris_frame
    wider = frame.assign(petal_ratio=frame["petal_length"] / frame["petal_width"])
    model = LogisticRegression(max_iter=500).fit(wider, y)
    modelport.log_model(model, "iris", wider.head(20), settings=settings)
    cli("card", "edit", "iris/2", *CARD)
    code, checks = _check(cli, "iris/2", "--data", str(holdout), "--label", "species")
    assert code == 1
    assert checks["signature"]["status"] == "fail"
    assert "required input 'petal_ratio' added" in checks["signature"]["detail"]
    assert checks["quality"]["status"] == "fail"
    assert "does not fit iris/2" in checks["quality"]["detail"]


def test_a_tampered_artifact_fails_and_the_model_is_not_run(
    cli: Cli,
    settings: Settings,
    registry: Registry,
    production: LogisticRegression,
    holdout: Path,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    record = modelport.log_model(production, "iris", iris_frame[0].head(20), settings=settings)
    cli("card", "edit", "iris/2", *CARD)
    folder = Path(record.artifact_uri.removeprefix("file://"))
    model_file = folder / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    code, checks = _check(cli, "iris/2", "--data", str(holdout), "--label", "species")
    assert code == 1
    assert checks["integrity"]["status"] == "fail"
    assert "modified after registration" in checks["integrity"]["detail"]
    assert checks["quality"]["status"] == "skip"
    assert checks["latency"]["status"] == "skip"


def test_an_unfinished_card_fails_until_edited_and_quality_skips_without_data(
    cli: Cli, settings: Settings, production: LogisticRegression, iris_frame: Any
) -> None:
    modelport.log_model(production, "iris", iris_frame[0].head(20), settings=settings)
    code, checks = _check(cli, "iris/2")
    assert code == 1
    assert checks["card"]["status"] == "fail"
    assert checks["card"]["detail"].startswith("missing: description, intended_use")
    assert checks["quality"]["status"] == "skip"

    edited = cli("card", "edit", "iris/2", *CARD)
    assert edited.returncode == 0, edited.stderr
    assert "complete" in edited.stdout
    code, checks = _check(cli, "iris/2")
    assert code == 0, checks
    assert _statuses(checks)["quality"] == "skip"


def test_a_first_release_skips_the_comparisons_and_bad_options_are_errors(
    cli: Cli, settings: Settings, iris_frame: tuple[pd.DataFrame, np.ndarray], holdout: Path
) -> None:
    frame, y = iris_frame
    modelport.log_model(
        LogisticRegression(max_iter=500).fit(frame, y), "iris", frame.head(20), settings=settings
    )
    cli("card", "edit", "iris/1", *CARD)
    code, checks = _check(cli, "iris/1")
    assert code == 0, checks
    assert checks["signature"]["status"] == "skip"

    no_label = cli("check", "iris/1", "--against", "iris@production", "--data", str(holdout))
    assert no_label.returncode == 1
    assert "--data needs --label" in no_label.stderr
    wrong = cli(
        "check", "iris/1", "--against", "iris@production", "--data", str(holdout), "--label", "nope"
    )
    assert wrong.returncode == 1
    assert "has no column 'nope'" in wrong.stderr
    assert cli("check", "iris/7", "--against", "iris@production").returncode == 1


def test_a_regressor_is_compared_on_r2_and_rmse(
    cli: Cli, settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge

    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=1)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    good = Ridge().fit(frame, y)
    worse = Ridge().fit(frame, np.random.default_rng(1).permutation(y))
    for model in (good, good, worse):
        modelport.log_model(model, "prices", frame.head(20), settings=settings)
    registry.set_alias("prices", "production", 1)
    data = tmp_path / "holdout.csv"
    frame.assign(target=y).to_csv(data, index=False)
    holdout = ("--data", str(data), "--label", "target")
    _, same = _check(cli, "prices/2", *holdout, against="prices@production")
    assert same["quality"]["status"] == "pass"
    assert "r2" in same["quality"]["detail"]
    assert "rmse" in same["quality"]["detail"]
    code, checks = _check(cli, "prices/3", *holdout, against="prices@production")
    assert code == 1
    assert checks["quality"]["status"] == "fail"
    assert "r2" in checks["quality"]["detail"]
    assert "rmse" in checks["quality"]["detail"]
