"""The CLI as a user runs it: a subprocess, real files, exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression


def _files(tmp_path: Path, model: LogisticRegression, X: np.ndarray) -> tuple[Path, Path]:
    model_path = tmp_path / "iris.skops"
    sio.dump(model, model_path)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(X[:10].tolist()))
    return model_path, sample


def test_register_list_alias_predict(cli: Any, tmp_path: Path, iris_logreg: LogisticRegression,
                                     iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    model_path, sample = _files(tmp_path, iris_logreg, X)
    first = cli("register", "iris", str(model_path), "--sample", str(sample),
                "--metric", "accuracy=0.97", "--tag", "team=risk", "--alias", "production")
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

    predicted = cli("predict", "iris@production", "--input", str(sample))
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["predictions"] == iris_logreg.predict(X[:10]).tolist()
    piped = cli("predict", "iris/1", "--input", "-", "--output", "probabilities",
                input=json.dumps({"instances": X[:2].tolist()}))
    np.testing.assert_allclose(json.loads(piped.stdout)["predictions"],
                               iris_logreg.predict_proba(X[:2]))


def test_errors_have_a_message_a_next_step_and_exit_1(
        cli: Any, tmp_path: Path, iris_logreg: LogisticRegression,
        iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    model_path, sample = _files(tmp_path, iris_logreg, X)
    pickle_path = tmp_path / "iris.joblib"
    joblib.dump(iris_logreg, pickle_path)
    cases = [
        (("versions", "ghost"), "Model not found", "modelport models"),
        (("register", "iris", str(pickle_path), "--sample", str(sample)),
         "Untrusted artifact", "--trusted"),
        (("register", "iris", str(tmp_path / "missing.skops"), "--sample", str(sample)),
         "Model failed to load", ""),
        (("register", "bad name", str(model_path), "--sample", str(sample)),
         "Invalid input", ""),
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


def test_trusted_pickle_registers(cli: Any, tmp_path: Path, iris_logreg: LogisticRegression,
                                  iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    pickle_path = tmp_path / "iris.joblib"
    joblib.dump(iris_logreg, pickle_path)
    sample = tmp_path / "sample.csv"
    np.savetxt(sample, X[:5], delimiter=",", header="a,b,c,d", comments="")
    done = cli("register", "iris", str(pickle_path), "--sample", str(sample), "--trusted",
               "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["trusted"] is True
    assert record["signature"]["kind"] == "columns"


def test_remote_predict_and_config(cli: Any, live_server: Any, settings: Any, tmp_path: Path,
                                   iris_logreg: LogisticRegression,
                                   iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    model_path, sample = _files(tmp_path, iris_logreg, X)
    assert cli("register", "iris", str(model_path), "--sample", str(sample)).returncode == 0
    server = live_server(["iris"], settings)
    remote = cli("predict", "iris", "--input", str(sample), "--url", server.url)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["predictions"] == iris_logreg.predict(X[:10]).tolist()
    unknown = cli("predict", "other", "--input", str(sample), "--url", server.url)
    assert unknown.returncode == 1
    assert "Model not found" in unknown.stderr
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
        cache_url="redis://:r3dis-pass@127.0.0.1:6379/0")
    shown = cli("config", "show", settings_override=settings)
    assert shown.returncode == 0, shown.stderr
    for secret in ("AKIAEXAMPLEKEY", "s3cr3t-key", "m1n10-pass", "pg-pass", "r3dis-pass"):
        assert secret not in shown.stdout
    assert "s3://**********@models/prod" in shown.stdout  # where it points stays visible
    assert "http://**********@127.0.0.1:9000" in shown.stdout


def test_gc_removes_only_orphaned_artifacts(cli: Any, settings: Any, tmp_path: Path,
                                            iris_logreg: LogisticRegression,
                                            iris_data: tuple[np.ndarray, np.ndarray]) -> None:
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
