"""The package as it would be published: `python -m build` makes an sdist and a wheel that
`twine check` accepts, and the wheel installed into a fresh virtualenv (no checkout anywhere
on its path) runs `modelport quickstart --no-serve` and serves the demo model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("src", "pyproject.toml", "README.md", "LICENSE")


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel built from a copy of the sources (the build leaves its own files)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tree / name)
    out = tmp_path_factory.mktemp("dist")
    # without isolation: the build backend of this environment, no download of it
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tree, cwd=tree)
    return out


def test_sdist_and_wheel_pass_twine_check_and_carry_every_data_file(dist: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    wheel = dist / f"modelport-{version}-py3-none-any.whl"
    assert wheel.is_file(), sorted(p.name for p in dist.iterdir())
    assert (dist / f"modelport-{version}.tar.gz").is_file()
    assert "PASSED" in run(sys.executable, "-m", "twine", "check", *dist.iterdir(), cwd=dist)
    listing = run(sys.executable, "-m", "zipfile", "-l", wheel, cwd=dist)
    migrations = sorted((ROOT / "src/modelport/store/migrations/versions").glob("0*.py"))
    for needed in (
        "modelport/py.typed",
        "modelport/serving/grpc/inference.proto",
        "modelport/store/migrations/env.py",
        f"modelport-{version}.dist-info/licenses/LICENSE",
        *(f"modelport/store/migrations/versions/{m.name}" for m in migrations),
    ):
        assert needed in listing, needed
    assert "tests/" not in listing
    sdist = run(
        sys.executable, "-m", "tarfile", "-l", dist / f"modelport-{version}.tar.gz", cwd=dist
    )
    assert f"modelport-{version}/LICENSE" in sdist


def test_the_wheel_in_a_fresh_venv_runs_the_quickstart_and_serves(
    dist: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    [wheel] = dist.glob("*.whl")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELPORT_", "PYTHON"))}
    env |= {"MODELPORT_HOME": str(tmp_path / "home"), "MODELPORT_CONFIG": str(tmp_path / "none")}
    run(venv / "bin" / "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    where = run(
        venv / "bin" / "python",
        "-c",
        "import modelport; print(modelport.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert where.startswith(str(venv)), where  # the installed package, not a checkout

    modelport = venv / "bin" / "modelport"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert run(modelport, "--version", cwd=tmp_path, env=env).strip() == version
    done = run(modelport, "quickstart", "--no-serve", cwd=tmp_path, env=env)
    assert "serve iris@production" in done

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [modelport, "serve", "iris@production", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        answer = httpx.post(
            f"{url}/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == ["setosa"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
