"""What the bench talks to: a server command, its URL and how each protocol encodes a request.

A :class:`Target` is everything that differs between servers, so a peer (MLflow, MLServer,
BentoML) is one more ``Target`` with its own command, readiness path and endpoints, and the
measuring code in serve_bench.py stays as it is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

Rows = list[list[float]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One inference protocol: where to POST, the body for some rows, the labels in the answer."""

    protocol: str
    path: Callable[[str], str]
    body: Callable[[Rows], bytes]
    labels: Callable[[Any], list[Any]]


def _v2_body(rows: Rows) -> bytes:
    flat = [value for row in rows for value in row]
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [len(rows), len(rows[0])],
                    "datatype": "FP64",
                    "data": flat,
                }
            ]
        }
    )


def _v2_labels(answer: Any) -> list[Any]:
    outputs = {o["name"]: o for o in answer["outputs"]}
    first = outputs.get("label") or answer["outputs"][0]
    return list(first["data"])


ENDPOINTS = (
    Endpoint(
        "v1",
        lambda name: f"/v1/models/{name}:predict",
        lambda rows: orjson.dumps({"instances": rows}),
        lambda answer: list(answer["predictions"]),
    ),
    Endpoint("v2", lambda name: f"/v2/models/{name}/infer", _v2_body, _v2_labels),
    # MLflow's own client sends dataframe_split; /models/<name>/invocations is our extension
    # for several models behind one server (docs/protocols.md, MLflow)
    Endpoint(
        "mlflow",
        lambda name: f"/models/{name}/invocations",
        lambda rows: orjson.dumps({"dataframe_split": {"data": rows}}),
        lambda answer: list(answer["predictions"]),
    ),
)


@dataclass(frozen=True, slots=True)
class Target:
    """A server to start and measure."""

    name: str
    command: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    host: str
    port: int
    ready_path: str = "/readyz"
    floor_path: str = "/healthz"
    ready_timeout_s: float = 120.0
    failed_marker: str | None = "(failed)"  # in a not-ready answer: give up, it will not load
    endpoints: tuple[Endpoint, ...] = ENDPOINTS


def modelport_target(home: Path, port: int, models: tuple[str, ...]) -> Target:
    """``modelport serve`` on its own registry, one OpenMP/BLAS thread, nothing else inherited.

    MODELPORT_* variables of the caller are dropped and the working directory is the temp dir,
    so a developer's modelport.yaml or environment cannot change what is measured.
    """
    port = port or free_port()
    exe = Path(sys.executable).with_name("modelport")
    command = (str(exe), "serve", *models, "--port", str(port))
    # every request sends the same row: a response cache would time the cache, not the model
    env = {
        "MODELPORT_HOME": str(home),
        "MODELPORT_CACHE": "false",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return Target("modelport", command, env, home.parent, "127.0.0.1", port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Server:
    """A started target: where it listens and which processes to charge CPU and memory to."""

    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def pids(self) -> list[int]:
        return [self.process.pid, *descendants(self.process.pid)]

    def rss_mib(self) -> float:
        """VmRSS of the server and its children (workers count: they are the server too)."""
        total_kib = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
        return round(total_kib / 1024, 1)


def descendants(pid: int) -> list[int]:
    """All processes below ``pid``, from the ppid field of /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@contextlib.contextmanager
def running(target: Target) -> Iterator[Server]:
    """Start ``target``, wait until its readiness path answers 200, stop it afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    env.update(target.env)
    log_path = target.cwd / f"{target.name}-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            target.command,
            env=env,
            cwd=target.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, target.host, target.port)
    try:
        _wait_ready(server, target, log_path)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def running_spread(make: Callable[[], Target], spread: int) -> Iterator[list[Server]]:
    """The server ``make`` builds, or with ``spread`` > 1 that many one-worker copies of it,
    each on a port of its own (``make`` picks a free one each time).

    uvicorn's workers share one listening socket, and the worker that wakes first accepts
    every connection waiting: a generator that opens all its connections at once can leave
    one worker serving them all for a whole round. Copies driven each by its own generator
    measure what the workers would do if connections were spread evenly."""
    with contextlib.ExitStack() as stack:
        if spread <= 1:
            yield [stack.enter_context(running(make()))]
            return
        copies = [make() for _ in range(spread)]
        one_worker = [replace(t, command=(*t.command, "--workers", "1")) for t in copies]
        yield [stack.enter_context(running(t)) for t in one_worker]


def _wait_ready(server: Server, target: Target, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + target.ready_timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(
                f"ABORT: {target.name} exited with {server.process.returncode}:\n" + _tail(log_path)
            )
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(server.url + target.ready_path, timeout=2)
            if answer.status_code == 200:
                return
            if target.failed_marker and target.failed_marker in answer.text:
                raise SystemExit(
                    f"ABORT: {target.name} cannot load a model: {answer.text}\n" + _tail(log_path)
                )
        time.sleep(0.2)
    raise SystemExit(
        f"ABORT: {target.name} not ready after {target.ready_timeout_s:g}s:\n" + _tail(log_path)
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it drains), then SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
