"""House rules that break silently: public API list, documented settings and commands, layers,
the two make targets, the test suite's own hygiene."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import modelport
from modelport.cli import reference
from modelport.cli.main import app
from modelport.cli.models import MODEL_FILES
from modelport.config import Settings
from modelport.errors import ModelportError, error_class_for
from modelport.runtimes import flavors

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "modelport"

# Which top-level packages each layer may import (DESIGN.md: imports flow down only).
LAYERS = {
    "store": set(),
    "runtimes": set(),
    "registry": {"store", "runtimes"},
    "codecs": {"runtimes", "registry"},
    "inference": {"store", "runtimes", "registry", "codecs"},
    "rollout": {"store", "runtimes", "registry", "codecs", "inference"},
    "security": {"store", "runtimes", "registry", "codecs", "inference"},
    "monitoring": {"store", "runtimes", "registry", "codecs", "inference"},
    "experiments": {"store", "runtimes", "registry", "codecs", "inference", "rollout"},
    "deploy": {"store", "runtimes", "registry", "monitoring"},
    "serving": {
        "store",
        "runtimes",
        "registry",
        "codecs",
        "inference",
        "rollout",
        "monitoring",
        "security",
        "experiments",
    },
    "cli": {
        "store",
        "runtimes",
        "registry",
        "codecs",
        "inference",
        "rollout",
        "monitoring",
        "security",
        "serving",
        "experiments",
        "deploy",
    },
}
SHARED = {"errors", "config", "logs", "durations", "documents"}


def test_public_api_is_explicit_and_complete() -> None:
    public = {name for name in vars(modelport) if not name.startswith("_")}
    submodules = {p.stem for p in SRC.iterdir() if p.suffix == ".py" or p.is_dir()}
    lazy = {"Client"}  # resolved on first use, so that servers never import httpx
    assert set(modelport.__all__) - {"__version__"} == (public - submodules) | lazy
    for name in modelport.__all__:
        assert getattr(modelport, name) is not None


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    from alembic.script import ScriptDirectory

    from modelport.store.db import HEAD_REVISION, MIGRATIONS

    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD_REVISION


SKIPPED_AT_START = ("alembic", "httpx", "scipy.stats", "sklearn.metrics")
"""Loaded only when used: migrations, webhooks and clients, drift and quality computations."""


def test_a_server_imports_neither_alembic_nor_httpx(tmp_path: Path) -> None:
    """Memory and start-up time are targets (issue: one worker <= 250 MiB): servers, even with
    the prediction log, drift and quality on, skip what they do not use yet."""
    code = (
        "import sys; from modelport.config import Settings; "
        "from modelport.serving import create_app; "
        f"create_app(Settings(home={str(tmp_path)!r}, prediction_log=True), []); "
        f"print(sorted(m for m in {SKIPPED_AT_START!r} if m in sys.modules))"
    )
    first = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )  # creates and migrates the database: alembic needed
    assert "httpx" not in first.stdout
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "[]"


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"MODELPORT_{name.upper()}" in documented, f"{name} missing from the docs"


def test_cli_reference_is_generated_from_the_commands() -> None:
    documented = (ROOT / "docs" / "cli.md").read_text()
    assert documented == reference.render(), (
        "docs/cli.md differs from the commands: run `python -m modelport.cli.reference > "
        "docs/cli.md` (make docs) and review the change"
    )


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def test_every_command_takes_short_help_and_the_app_a_version_flag() -> None:
    runner = CliRunner()
    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("alias", "set") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "-h"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path
    version = runner.invoke(app, ["--version"])
    assert (version.exit_code, version.output.strip()) == (0, modelport.__version__)


def test_register_help_names_every_model_file_type() -> None:
    for flavor in flavors().values():
        for suffix in flavor.suffixes:
            assert suffix in MODEL_FILES, f"{flavor.name} reads {suffix}: missing from register"


def test_make_run_installs_only_the_package_and_make_test_the_dev_tools() -> None:
    def commands(target: str) -> str:
        return subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    run, test = commands("run"), commands("test")
    assert "pip install -q -e .\n" in run
    assert "[dev]" not in run
    assert "pip install -q -e '.[dev]'" in test
    run_stamps, test_stamps = (set(re.findall(r"touch (\S+)", text)) for text in (run, test))
    assert run_stamps, run
    assert test_stamps, test
    assert not run_stamps & test_stamps, "one stamp for both installs: they would fight"


@pytest.mark.parametrize("redis_answers", [False, True])
def test_services_script_starts_redis_only_when_it_is_not_answering(
    tmp_path: Path, redis_answers: bool
) -> None:
    """The services themselves are the outside world: stand-ins record what would start."""
    stubs = {
        "pg_isready": "exit 0",
        "redis-cli": "echo PONG" if redis_answers else "exit 1",
        "redis-server": f"printf '%s\\n' \"$@\" > {tmp_path}/redis-server.args",
    }
    for name, body in stubs.items():
        stub = tmp_path / name
        stub.write_text(f"#!/bin/sh\n{body}\n")
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(ROOT / "scripts" / "services.sh")], env=env, check=True)
    started = tmp_path / "redis-server.args"
    if redis_answers:
        assert not started.exists()
    else:
        assert started.read_text().splitlines() == [
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ]


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        for module in modules:
            match = re.match(r"modelport\.(\w+)", module)
            if match:
                found.add(match.group(1))
    return found


def test_layers_import_only_downwards() -> None:
    for layer, allowed in LAYERS.items():
        for path in (SRC / layer).rglob("*.py"):
            imported = _imported_layers(path) - SHARED - {layer}
            upward = {m for m in imported if m in LAYERS and m not in allowed}
            assert not upward, f"{path.relative_to(SRC)} imports upper layer(s) {upward}"


def _inner_pytest(tmp_path: Path, test_code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one test file under this suite's conftest, in ``tmp_path``, with extra variables."""
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(test_code)
    environment = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    environment.pop("MODELPORT_CONFIG", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(ROOT),
            str(test_file),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tests_never_read_the_developers_environment(tmp_path: Path) -> None:
    (tmp_path / "modelport.yaml").write_text("port: 4321\n")
    inner = _inner_pytest(
        tmp_path,
        (
            "import os\n"
            "from modelport.config import Settings\n"
            "def test_defaults():\n"
            "    assert not [k for k in os.environ if k.startswith('MODELPORT_') "
            "and k != 'MODELPORT_CONFIG']\n"
            "    assert Settings().port == 8000\n"
        ),
        MODELPORT_PORT="1234",
        MODELPORT_HOME="/x",
    )
    assert inner.returncode == 0, inner.stdout + inner.stderr
    assert "1 passed" in inner.stdout


def test_a_test_that_leaves_a_listening_process_fails_the_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    inner = _inner_pytest(
        tmp_path,
        (
            "import subprocess, sys, time, pathlib\n"
            'LISTEN = \'import socket, time; s = socket.socket(); s.bind(("127.0.0.1", 0)); '
            "s.listen(); print(flush=True); time.sleep(120)'\n"
            "def test_forgets_its_server():\n"
            "    child = subprocess.Popen([sys.executable, '-c', LISTEN], stdout=subprocess.PIPE)\n"
            "    child.stdout.readline()\n"
            f"    pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        ),
    )
    pid = int(pid_file.read_text())
    try:
        assert inner.returncode == 1, inner.stdout
        assert "left listening process(es) behind" in inner.stdout
        assert f"pid {pid} listening on tcp:" in inner.stdout
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, 9)


def _error_classes(cls: type[ModelportError]) -> Iterator[type[ModelportError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _error_classes(sub)


def test_every_error_is_rebuilt_from_its_code_and_detail() -> None:
    """What the SDK client and a failed job's status do with a problem body."""
    for cls in _error_classes(ModelportError):
        rebuilt = error_class_for(cls.code)("the detail")
        assert rebuilt.code == cls.code
        assert rebuilt.detail == "the detail"
