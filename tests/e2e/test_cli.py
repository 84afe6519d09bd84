"""The CLI as a user runs it: a subprocess, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import modelport
from modelport.config import Settings
from modelport.registry import Registry
from tests.e2e.conftest import settings_env


def _files(tmp_path: Path, model: LogisticRegression, X: np.ndarray) -> tuple[Path, Path]:
    model_path = tmp_path / "iris.skops"
    sio.dump(model, model_path)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(X[:10].tolist()))
    return model_path, sample


def test_register_list_and_alias(
    cli: Any,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    model_path, sample = _files(tmp_path, iris_logreg, X)
    first = cli(
        "register",
        "iris",
        str(model_path),
        "--sample",
        str(sample),
        "--metric",
        "accuracy=0.97",
        "--tag",
        "team=risk",
        "--alias",
        "production",
    )
    assert first.returncode == 0, first.stderr
    assert "registered iris/1" in first.stdout
    second = cli("register", "iris", str(model_path), "--sample", str(sample), "--json")
    assert json.loads(second.stdout)["version"] == 2

    listed = json.loads(cli("models", "--json").stdout)
    assert listed[0]["aliases"] == {"production": 1}
    assert listed[0]["latest_version"] == 2
    versions = json.loads(cli("versions", "iris", "--json").stdout)
    assert versions[0]["metrics"] == {"accuracy": 0.97}
    assert versions[0]["tags"] == {"team": "risk"}
    assert "iris versions" in cli("versions", "iris").stdout

    assert cli("alias", "set", "iris", "production", "2").returncode == 0
    history = json.loads(cli("alias", "list", "iris", "--json").stdout)["history"]
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, 2)]


def test_errors_have_a_message_a_next_step_and_exit_1(
    cli: Any,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    model_path, sample = _files(tmp_path, iris_logreg, X)
    pickle_path = tmp_path / "iris.joblib"
    joblib.dump(iris_logreg, pickle_path)
    cases = [
        (("versions", "ghost"), "Model not found", "modelport models"),
        (
            ("register", "iris", str(pickle_path), "--sample", str(sample)),
            "Untrusted artifact",
            "--trusted",
        ),
        (
            ("register", "iris", str(tmp_path / "missing.skops"), "--sample", str(sample)),
            "Model failed to load",
            "",
        ),
        (("register", "bad name", str(model_path), "--sample", str(sample)), "Invalid input", ""),
        (("predict", "ghost@production", "--input", str(sample)), "Model not found", ""),
    ]
    for args, title, hint in cases:
        result = cli(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith(f"error: {title}:"), result.stderr
        assert hint in result.stderr
        assert "Traceback" not in result.stderr
    usage = cli("alias", "set", "iris", "production", "not-a-number")
    assert usage.returncode == 2
    assert cli("models", "--json").stdout.strip() == "[]"


def test_trusted_pickle_registers(
    cli: Any,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    pickle_path = tmp_path / "iris.joblib"
    joblib.dump(iris_logreg, pickle_path)
    sample = tmp_path / "sample.csv"
    np.savetxt(sample, X[:5], delimiter=",", header="a,b,c,d", comments="")
    done = cli("register", "iris", str(pickle_path), "--sample", str(sample), "--trusted", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["trusted"] is True
    assert record["signature"]["kind"] == "columns"


def test_remote_predict(
    cli: Any,
    live_server: Any,
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    server = live_server(["iris"], settings)
    assert "warning: iris follows the latest version" in server.log()
    expected = iris_logreg.predict(X[:10]).tolist()
    sample = tmp_path / "rows.json"
    sample.write_text(json.dumps(X[:10].tolist()))
    headerless = tmp_path / "rows.csv"
    np.savetxt(headerless, X[:10], delimiter=",")
    for address, source in [("iris", str(sample)), ("iris/1", str(headerless))]:
        remote = cli("predict", address, "--input", source, "--url", server.url)
        assert remote.returncode == 0, (address, source, remote.stderr)
        assert json.loads(remote.stdout)["predictions"] == expected
    piped = cli("predict", "iris", "-i", "-", "--url", server.url, input=headerless.read_text())
    assert json.loads(piped.stdout)["predictions"] == expected, piped.stderr
    unknown = cli("predict", "other", "--input", str(sample), "--url", server.url)
    assert unknown.returncode == 1
    assert "Model not found" in unknown.stderr


def test_config_show(cli: Any) -> None:
    shown = cli("config", "show")
    assert shown.returncode == 0
    assert "max_body_bytes" in shown.stdout
    described = cli("config", "show", "--describe")
    assert "MODELPORT_DATABASE_URL" in described.stdout


def test_config_show_hides_every_credential(cli: Any, make_settings: Any) -> None:
    settings = make_settings(
        artifact_uri="s3://AKIAEXAMPLEKEY:s3cr3t-key@models/prod",
        s3_endpoint_url="http://minio:m1n10-pass@127.0.0.1:9000",
        database_url="postgresql+psycopg://modelport:pg-pass@127.0.0.1:5432/modelport",
        cache_url="redis://:r3dis-pass@127.0.0.1:6379/0",
    )
    shown = cli("config", "show", settings_override=settings)
    assert shown.returncode == 0, shown.stderr
    for secret in ("AKIAEXAMPLEKEY", "s3cr3t-key", "m1n10-pass", "pg-pass", "r3dis-pass"):
        assert secret not in shown.stdout
    assert "s3://**********@models/prod" in shown.stdout  # where it points stays visible
    assert "http://**********@127.0.0.1:9000" in shown.stdout


def test_gc_removes_only_orphaned_artifacts(
    cli: Any,
    settings: Any,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    model_path, sample = _files(tmp_path, iris_logreg, X)
    assert cli("register", "iris", str(model_path), "--sample", str(sample)).returncode == 0
    store = Path(settings.home) / "artifacts" / "iris"
    (kept,) = list(store.iterdir())
    orphan = store / ("ab" * 16)  # what a registration killed before its row leaves behind
    orphan.mkdir()
    (orphan / "model.skops").write_bytes(b"partial upload")
    young = cli("gc")
    assert young.returncode == 0
    assert orphan.exists(), "a fresh orphan may still be uploading"
    done = cli("gc", "--older-than-minutes", "0")
    assert done.returncode == 0, done.stderr
    assert f"iris/{'ab' * 16}" in done.stdout
    assert not orphan.exists()
    assert kept.exists()
    assert cli("predict", "iris", "--input", str(sample)).returncode == 0


def _tensor_input(form: str, X: np.ndarray, folder: Path) -> tuple[str, str | None]:
    """(--input value, stdin) holding X's rows in one of the forms a user has at hand."""
    if form == "json":
        (folder / "rows.json").write_text(json.dumps(X.tolist()))
        return str(folder / "rows.json"), None
    if form == "stdin-v1-json":
        return "-", json.dumps({"instances": X.tolist()})
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"] if form == "csv-header" else None)
    text = frame.to_csv(index=False, header=form != "csv-headerless")  # default header 0,1,..
    if form == "stdin-csv":
        return "-", text
    (folder / "rows.csv").write_text(text)
    return str(folder / "rows.csv"), None


@pytest.mark.parametrize(
    "form",
    ["json", "stdin-v1-json", "csv-header", "csv-default-header", "csv-headerless", "stdin-csv"],
)
def test_predict_locally_from_every_input_form(
    cli: Any,
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    form: str,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    """One tensor model, addressed by alias and by version; headerless rows are all kept."""
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    registry.set_alias("iris", "production", 1)
    source, stdin = _tensor_input(form, X[:10], tmp_path)
    address = "iris@production" if form == "json" else "iris/1"
    done = cli("predict", address, "-i", source, "--output", "probabilities", input=stdin)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(
        json.loads(done.stdout)["predictions"], iris_logreg.predict_proba(X[:10])
    )


def test_predict_maps_headerless_rows_onto_a_columns_model(
    cli: Any,
    settings: Settings,
    tmp_path: Path,
    mixed_pipeline: Pipeline,
    mixed_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, _ = mixed_frame
    modelport.log_model(mixed_pipeline, "mixed", frame.head(20), settings=settings)
    expected = mixed_pipeline.predict(frame.head(5)).tolist()
    headerless = tmp_path / "rows.csv"
    frame.head(5).to_csv(headerless, index=False, header=False)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(frame.head(5).values.tolist()))
    for source in (headerless, rows):
        predicted = cli("predict", "mixed", "-i", str(source))
        assert predicted.returncode == 0, (source.name, predicted.stderr)
        assert json.loads(predicted.stdout)["predictions"] == expected, source.name


def test_alias_set_refuses_a_version_that_cannot_load(
    cli: Any,
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    stored = {}
    for _ in range(4):
        record = modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
        stored[record.version] = Path(urlparse(record.artifact_uri).path)
    registry.set_alias("iris", "production", 1)
    with (stored[2] / "model.skops").open("ab") as tampered:
        tampered.write(b"\0")
    (stored[3] / "model.skops").unlink()
    with closing(sqlite3.connect(Path(settings.home) / "modelport.db")) as db, db:
        db.execute("UPDATE model_versions SET flavor = 'tensorflow' WHERE version = 4")
    cases = [
        (2, "error: Artifact integrity check failed:", "modified after registration"),
        (3, "error: Artifact integrity check failed:", "missing"),
        (4, "error: Model failed to load:", "'tensorflow' is not installed"),
    ]
    for version, title, detail in cases:
        refused = cli("alias", "set", "iris", "production", str(version))
        assert refused.returncode == 1, (version, refused.stdout)
        assert refused.stderr.startswith(title), refused.stderr
        assert detail in refused.stderr
        assert "--force" in refused.stderr
    assert registry.get_model("iris").aliases == {"production": 1}
    forced = cli("alias", "set", "iris", "production", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert registry.get_model("iris").aliases == {"production": 2}


def test_version_flag_and_short_help(cli: Any) -> None:
    version = cli("--version")
    assert (version.returncode, version.stdout.strip()) == (0, modelport.__version__)
    helped = cli("alias", "set", "-h")
    assert helped.returncode == 0
    assert "--force" in helped.stdout


def test_quickstart_prints_commands_that_run_without_activating(
    settings: Any, tmp_path: Path
) -> None:
    script = Path(sys.prefix) / "bin" / "modelport"
    runnable = str(script) if script.exists() else f"{sys.executable} -m modelport"
    env = settings_env(settings)
    outside = os.pathsep.join(
        p
        for p in env.get("PATH", "").split(os.pathsep)
        if Path(p).resolve() != script.parent.resolve()
    )
    for path, command in [
        (outside, runnable),
        (os.pathsep.join([str(script.parent), outside]), "modelport"),
    ]:
        if command == "modelport" and not script.exists():
            continue
        done = subprocess.run(
            [sys.executable, "-m", "modelport", "quickstart", "--no-serve"],
            env={**env, "PATH": path, "COLUMNS": "200"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert f"serve it with: {command} serve iris@production" in done.stdout
