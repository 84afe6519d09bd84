"""E2E tier: `modelport serve` and the CLI as real subprocesses on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelport
from modelport.config import Settings, as_environment
from tests.e2e.doubles import SlowPoisonModel
from tests.e2e.traffic import Load


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to see the same settings as ``settings``."""
    # MODELPORT_CONFIG stays: tests point it at nothing, so no modelport.yaml is read
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPORT_") or k == "MODELPORT_CONFIG"
    }
    env.update(as_environment(settings))
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as Kubernetes sends it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


def start_server(
    models: list[str],
    settings: Settings,
    tmp_path: Path,
    *extra: str,
    wait_ready: bool = True,
    timeout_s: float = 60.0,
    port: int | None = None,
    scheme: str = "http",
) -> LiveServer:
    port = port or free_port()
    log_path = tmp_path / f"server-{port}.log"
    command = [sys.executable, "-m", "modelport", "serve", *models, "--port", str(port), *extra]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=settings_env(settings)
        )
    server = LiveServer(process, port, log_path, scheme)
    deadline = time.monotonic() + timeout_s
    wanted = "/readyz" if wait_ready else "/healthz"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            # a test server's certificate is its own, self-signed
            if httpx.get(server.url + wanted, timeout=1, verify=False).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            raise TimeoutError(f"server not ready after {timeout_s}s:\n{server.log()}")
        time.sleep(0.1)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """``live_server(["iris@production"], settings)`` — stopped at the end of the test."""
    started: list[LiveServer] = []

    def factory(
        models: list[str], settings: Settings, *extra: str, wait_ready: bool = True
    ) -> LiveServer:
        server = start_server(models, settings, tmp_path, *extra, wait_ready=wait_ready)
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def cli(settings: Settings) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `modelport ARGS...` as a subprocess against this test's settings."""

    def run(
        *args: str, input: str | None = None, settings_override: Settings | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = settings_env(settings_override or settings)
        env["COLUMNS"] = "200"
        return subprocess.run(
            [sys.executable, "-m", "modelport", *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.fixture
def loads() -> Iterator[Callable[[str], Load]]:
    """``loads(url)`` starts a thread posting requests until the test ends (or ``stop()``)."""
    started: list[tuple[Load, threading.Thread]] = []

    def start(url: str) -> Load:
        load = Load(url)
        thread = threading.Thread(target=load.run, daemon=True)
        thread.start()
        started.append((load, thread))
        return load

    yield start
    for load, thread in started:
        load.stop()
        thread.join(timeout=30)


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A boto3 client on the endpoint and a fresh, empty bucket for this test."""
    import boto3  # type: ignore[import-untyped]

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"mp-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def slow_settings(make_settings: Callable[..., Settings]) -> Settings:
    """A registered model answering one row per piece at 50 ms a call: a job that runs for
    about 3 s, and a lease short enough that a killed worker's job moves on within the test."""
    settings = make_settings(workers=1, job_piece_rows=1, job_lease_s=1.0, job_poll_s=0.2)
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    return settings
