"""Failures from outside modelport reach the user as one line and a next step, never a traceback.

Bad settings, an unknown key in modelport.yaml, a malformed or unreachable database, a port
already taken, and a full or read-only disk. The disks are real: a tmpfs mounted in a private
mount namespace (``unshare -rm``), gone when the command exits; without user namespaces those
tests skip and say so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

from modelport.config import Settings
from tests.e2e.conftest import free_port, settings_env


def run(
    settings: Settings,
    *args: str,
    env: dict[str, str] | None = None,
    wrapper: tuple[str, ...] = (),
    unset: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`modelport ARGS` as a subprocess, with extra (or ``unset``) environment variables."""
    environment = {**settings_env(settings), "COLUMNS": "200", **(env or {})}
    for name in unset:
        environment.pop(name)
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "modelport", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_reported(done: subprocess.CompletedProcess[str], title: str, *details: str) -> str:
    """Exit 1, ``error: <title>: ...`` then a ``next:`` line; returns stderr."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
    assert lines[0].startswith(f"error: {title}: " if title else "error: "), done.stderr
    assert lines[1].startswith("next: "), done.stderr
    for detail in details:
        assert detail in done.stderr, (detail, done.stderr)
    return done.stderr


def test_bad_setting_values_name_their_source(settings: Settings, tmp_path: Path) -> None:
    for command in (("config", "show"), ("models",), ("serve", "iris@production")):
        done = run(settings, *command, env={"MODELPORT_PORT": "abc"})
        assert_reported(
            done,
            "Configuration error",
            "MODELPORT_PORT='abc'",
            "valid integer",
            "config show --describe",
        )
    listed = run(settings, "models", env={"MODELPORT_MODELS": "iris"})
    assert_reported(listed, "Configuration error", "MODELPORT_MODELS is not valid JSON")


def test_unknown_yaml_keys_are_errors_unknown_variables_are_not(
    settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "modelport.yaml"
    config.write_text("prot: 9000\nlog_level: debug\n")
    done = run(settings, "config", "show", env={"MODELPORT_CONFIG": str(config)})
    assert_reported(
        done,
        "Configuration error",
        "unknown setting(s)",
        str(config),
        "'prot' (did you mean 'port'?)",
    )
    config.write_text("port: 9000\n")
    shown = run(
        settings,
        "config",
        "show",
        unset=("MODELPORT_PORT",),
        env={"MODELPORT_CONFIG": str(config), "MODELPORT_NOT_A_SETTING": "1"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "port: 9000" in shown.stdout


def test_malformed_or_unreachable_database(settings: Settings) -> None:
    for url, detail in [("not a url", "Could not parse"), ("nosuchdb://x/y", "nosuchdb")]:
        done = run(settings, "models", env={"MODELPORT_DATABASE_URL": url})
        assert_reported(done, "Configuration error", "MODELPORT_DATABASE_URL", detail, "sqlite:///")
    unreachable = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    for command in (("models",), ("serve", "iris@production")):
        done = run(settings, *command, env={"MODELPORT_DATABASE_URL": unreachable})
        assert_reported(
            done, "Registry storage unavailable", "Connection refused", "MODELPORT_DATABASE_URL"
        )


def test_serve_on_a_port_in_use(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        pinned = run(settings, "serve", "iris@production", "--port", port)
        assert_reported(pinned, "Conflict", f"127.0.0.1:{port} is already in use", "--port")
        assert "warning" not in pinned.stderr
        latest = run(settings, "serve", "iris", "--port", port)
        stderr = assert_reported(latest, "Conflict")
        assert stderr.startswith("warning: iris follows the latest version"), stderr


# -- full and read-only disks ---------------------------------------------------------------


def tmpfs(folder: Path, options: str, before: str = "") -> tuple[str, ...]:
    """A command prefix that runs its command with ``folder`` on a fresh tmpfs."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot mount a private tmpfs")
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs (user namespaces?): {probe.stderr.strip()}")
    script = f'mount -t tmpfs -o {options} tmpfs "$0" && {before or "true"} && exec "$@"'
    return ("unshare", "-rm", "sh", "-c", script, str(folder))


def test_a_full_disk_under_the_database(settings: Settings, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    home = make_home(settings, disk)
    done = run(home, "models", wrapper=tmpfs(disk, "size=16k"))
    stderr = assert_reported(done, "Registry storage unavailable", "modelport.db", "free space")
    # SQLite says "database or disk is full", or fails to size its WAL index first
    assert "disk is full" in stderr or "disk I/O error" in stderr, stderr


def test_a_full_disk_under_the_artifacts(
    settings: Settings, tmp_path: Path, iris_data: Any
) -> None:
    X, y = iris_data
    model = tmp_path / "forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y), model)
    sample = tmp_path / "sample.csv"
    sample.write_text("\n".join(",".join(map(str, row)) for row in X[:5]))
    disk = tmp_path / "disk"
    home = make_home(settings, disk)
    # the database is created first, then all but 200 KiB of the disk is filled: the
    # database still has room to write, the model's ~0.5 MB do not fit
    fill = (
        f"{sys.executable} -m modelport models >/dev/null && "
        'avail=$(df --output=avail -k "$0" | tail -1) && '
        'head -c $(( (avail - 200) * 1024 )) /dev/zero > "$0/filler"'
    )
    done = run(
        home,
        "register",
        "forest",
        str(model),
        "--sample",
        str(sample),
        "--trusted",
        wrapper=tmpfs(disk, "size=2m", before=fill),
    )
    assert_reported(done, "Artifact error", "No space left on device", "free space")


def test_a_read_only_disk(settings: Settings, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    home = make_home(settings, disk)
    done = run(home, "models", wrapper=tmpfs(disk, "ro,size=16k"))
    assert_reported(done, "Registry storage unavailable", "Read-only file system", "writable")


def make_home(settings: Settings, disk: Path) -> Settings:
    return settings.model_copy(update={"home": disk / "home"})
