"""Server CPU (or instructions) per request: modelport against the HTTP floor, one worker each.

Wall-clock throughput on a shared 2-core machine moves by 25 % between identical runs; the CPU
a server spends per request moves far less, and is what the throughput ceiling follows. This
script starts, one at a time,

* **floor**: a FastAPI app on uvicorn (uvloop, httptools) answering the V1 predict path with a
  constant body (what ``bench/compare.py`` calls ``fastapi-const``);
* **modelport**: ``modelport serve small medium --workers 1`` on a temporary registry holding
  the fixed bench models (``bench/models.py``), ``OMP_NUM_THREADS=1``, cache off,

sends ``--requests`` single-row V1 predict requests over ``--connections`` keep-alive
connections (closed loop), and prints server CPU per request: the sum of ``/proc/PID/task/*/
schedstat`` run time (nanoseconds, every thread of the server) before and after, median of
``--rounds`` rounds. The client runs in this process; its cost is not counted.

* ``--deployments``: the models are registered twice, and the same modelport process also
  serves each one's 90/10 split and 90/10 split with a 100 % shadow (the deployments of
  ``bench/deployments.py``);
* ``--log``: a second modelport process, the same but writing every request to the prediction
  log (SQLite), serves the same models in the same alternating rounds;
* ``--pin``: the server runs on CPU 0 and the client on CPU 1, so neither takes the other's
  time slices (rounds of one run then agree more closely; a host that slows down its virtual
  CPUs still moves whole runs);
* ``--callgrind``: the servers run under ``valgrind --tool=callgrind`` with instrumentation
  switched on only around the measured requests, and the table shows instructions per
  request instead (deterministic to a few per mille, but batches form as on a machine fifty
  times slower; slow: about a minute to start a server).

    PYTHONPATH=src .venv/bin/python bench/cpu_per_request.py
    PYTHONPATH=src .venv/bin/python bench/cpu_per_request.py --connections 16 --requests 5000
    PYTHONPATH=src .venv/bin/python bench/cpu_per_request.py --callgrind --requests 1000
    PYTHONPATH=src .venv/bin/python bench/cpu_per_request.py --deployments --pin --connections 32
    PYTHONPATH=src .venv/bin/python bench/cpu_per_request.py --log --pin --connections 64

The modelport that runs is the one on ``PYTHONPATH`` (``src`` of the checkout you run from).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from deployments import prepare
from models import BenchModel, build_models, register
from targets import Server, Target, free_port, running

ROOT = Path(__file__).resolve().parent.parent
FLOOR_APP = '''"""The HTTP floor: FastAPI answering the V1 predict path with a constant."""
import orjson
from fastapi import FastAPI, Response

app = FastAPI()
BODY = orjson.dumps({"predictions": [0]})


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/models/{name}:predict")
async def predict(name: str) -> Response:
    return Response(BODY, media_type="application/json")
'''
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    server: str  # "floor", "modelport" or "modelport-log"
    model: str
    deployment: str | None = None
    """What the request names instead of the model (a deployment serving it)."""

    @property
    def served(self) -> str:
        return self.deployment or self.model


CASES = (
    Case("floor (FastAPI constant)", "floor", "small"),
    Case("modelport small", "modelport", "small"),
    Case("modelport medium", "modelport", "medium"),
)
SETTLE_S = 1.0
"""With deployments or the log, how long each round waits after its last answer before reading
the counters: the shadow's copies are answered after the clients', in calls made every 0.25 s,
and the log writes what gathered every 0.5 s."""
DEPLOYMENT_CASES = tuple(
    Case(f"modelport {model}-{kind}", "modelport", model, f"{model}-{kind}")
    for model in ("small", "medium")
    for kind in ("split", "shadow")
)
LOG_CASES = tuple(
    Case(f"modelport {model}, log on", "modelport-log", model) for model in ("small", "medium")
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="measured requests per round")
    parser.add_argument("--warmup", type=int, default=1000, help="requests before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--connections", type=int, default=1, help="keep-alive connections")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (callgrind.out)")
    parser.add_argument("--deployments", action="store_true", help="also a split and a shadow")
    parser.add_argument("--log", action="store_true", help="also with the prediction log on")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, client on CPU 1")
    opts = parser.parse_args()
    if opts.callgrind:
        opts.rounds = 1
    if opts.pin:
        os.sched_setaffinity(0, {1})
    tmp = Path(tempfile.mkdtemp(prefix="modelport-cpu-"))
    home = tmp / "home"
    models = build_models()
    cases = CASES + (DEPLOYMENT_CASES if opts.deployments else ()) + (LOG_CASES if opts.log else ())
    if opts.deployments:
        prepare(home, list(models))
    else:
        register(models, home)
    (tmp / "app.py").write_text(FLOOR_APP)
    results: dict[str, Result] = {}
    for server_name in dict.fromkeys(case.server for case in cases):
        target = _target(server_name, tmp, home, opts)
        with running(target) as server:
            served = [c for c in cases if c.server == server_name]
            results |= _measure(server, served, models, opts, tmp)
    _print(results, opts)
    if opts.keep:
        print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _target(server: str, tmp: Path, home: Path, opts: argparse.Namespace) -> Target:
    port = free_port()
    python = sys.executable
    if server == "floor":
        command: tuple[str, ...] = (
            python,
            "-m",
            "uvicorn",
            "app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        )
        env = {**ONE_THREAD, "PYTHONPATH": str(tmp)}
    else:
        models = ("small", "medium")
        entry = "from modelport.cli.main import app; app()"
        command = (python, "-c", entry, "serve", *models, "--port", str(port))
        command += ("--workers", "1")
        if opts.deployments:
            command += tuple(f"--deployment={c.served}" for c in DEPLOYMENT_CASES)
        src = os.environ.get("PYTHONPATH", str(ROOT / "src"))
        env = {**ONE_THREAD, "MODELPORT_HOME": str(home), "MODELPORT_CACHE": "false"}
        env["PYTHONPATH"] = src
        if server == "modelport-log":
            env["MODELPORT_PREDICTION_LOG"] = "true"
    if opts.callgrind:
        out = tmp / f"callgrind.{server}.%p"
        command = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *command,
        )
    if opts.pin:
        command = ("taskset", "-c", "0", *command)
    ready = "/healthz" if server == "floor" else "/readyz"
    target = Target(server, command, env, tmp, "127.0.0.1", port, ready_path=ready)
    if opts.callgrind:
        from dataclasses import replace

        target = replace(target, ready_timeout_s=900.0)
    return target


def _measure(
    server: Server,
    cases: list[Case],
    models: dict[str, BenchModel],
    opts: argparse.Namespace,
    tmp: Path,
) -> dict[str, Result]:
    """Every case warmed up, then measured in alternating rounds (A B C A B C …) over the
    same connections: a busy moment of the machine, or a server still settling after its
    start, lands on each case rather than on the first."""
    requests = {case.label: _request(case, models) for case in cases}
    costs: dict[str, list[float]] = {case.label: [] for case in cases}
    latencies: dict[str, list[float]] = {case.label: [] for case in cases}
    write_calls: dict[str, list[float]] = {case.label: [] for case in cases}
    with _connections(server.port, opts.connections) as socks:
        for request in requests.values():
            _drive(socks, request, opts.warmup)
        for _ in range(opts.rounds):
            for case in cases:
                cost, seen, writes = _round(server, socks, requests[case.label], opts, tmp, case)
                costs[case.label].append(cost)
                latencies[case.label] += seen
                write_calls[case.label].append(writes)
    return {
        label: Result(
            statistics.median(costs[label]),
            statistics.median(latencies[label]) * 1e3,
            statistics.median(write_calls[label]),
        )
        for label in requests
    }


def _round(
    server: Server,
    socks: list[socket.socket],
    request: bytes,
    opts: argparse.Namespace,
    tmp: Path,
    case: Case,
) -> tuple[float, list[float], float]:
    """One round of one case: its cost per request (CPU µs or instructions), each request's
    latency, and write system calls per request."""
    if opts.callgrind:
        _callgrind(server, "-z")
        _callgrind(server, "-i", "on")
    before, writes = _cpu_ns(server.process.pid), _writes(server.process.pid)
    latencies = _drive(socks, request, opts.requests)
    if opts.deployments or opts.log:
        time.sleep(SETTLE_S)
    after = _cpu_ns(server.process.pid)
    written = (_writes(server.process.pid) - writes) / opts.requests
    if not opts.callgrind:
        return (after - before) / 1e3 / opts.requests, latencies, written
    _callgrind(server, "-i", "off")
    return _instructions(server, tmp, case) / opts.requests, latencies, written


def _request(case: Case, models: dict[str, BenchModel]) -> bytes:
    """A single-row V1 predict request for the case's model, by the name it is served as."""
    body = orjson.dumps({"instances": models[case.model].rows[:1].tolist()})
    head = (
        f"POST /v1/models/{case.served}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True, slots=True)
class Result:
    cost: float
    """CPU µs, or instructions, per request"""
    p50_ms: float
    writes: float
    """write system calls per request (/proc/PID/io syscw): answers sent in one piece or two"""


@contextlib.contextmanager
def _connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        for sock in socks:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _drive(socks: list[socket.socket], request: bytes, total: int) -> list[float]:
    """Closed loop: each connection sends its next request once its answer is read; every
    answer must be a 200. Returns each request's latency in seconds."""
    selector = selectors.DefaultSelector()
    buffers = {sock: b"" for sock in socks}
    started: dict[socket.socket, float] = {}
    sent = done = 0
    latencies: list[float] = []
    for sock in socks:
        if sent < total:
            started[sock] = time.perf_counter()
            sock.sendall(request)
            sent += 1
            selector.register(sock, selectors.EVENT_READ)
    while done < total:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            buffers[sock] += sock.recv(65536)
            answer = _complete(buffers[sock])
            if answer is None:
                continue
            buffers[sock] = buffers[sock][answer:]
            latencies.append(time.perf_counter() - started[sock])
            done += 1
            if sent < total:
                started[sock] = time.perf_counter()
                sock.sendall(request)
                sent += 1
            else:
                selector.unregister(sock)
    selector.close()
    return latencies


def _complete(buffer: bytes) -> int | None:
    """Length of the first whole response in ``buffer`` (a 200), or None while incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[:end].decode("latin-1")
    if not head.startswith("HTTP/1.1 200"):
        raise SystemExit(f"ABORT: the server answered {head!r}")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    total = end + 4 + length
    return total if len(buffer) >= total else None


def _cpu_ns(pid: int) -> int:
    """Run time of every thread of ``pid`` so far (schedstat: nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def _writes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def _callgrind(server: Server, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(server.process.pid)], check=True, stdout=-3)


def _instructions(server: Server, tmp: Path, case: Case) -> float:
    """Dump the counters and read the total ``Ir`` of the new dump file."""
    before = set(tmp.glob(f"callgrind.{case.server}.*"))
    _callgrind(server, "-d")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(tmp.glob(f"callgrind.{case.server}.*")) - before
        for dump in new:
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    return float(line.split()[1])
        time.sleep(0.5)
    raise SystemExit("ABORT: no callgrind dump appeared")


def _print(results: dict[str, Result], opts: argparse.Namespace) -> None:
    unit = "instructions/req" if opts.callgrind else "server CPU µs/req"
    floor = results[CASES[0].label].cost
    print(
        f"\n{opts.requests} requests x {opts.rounds} round(s), {opts.connections} connection(s), "
        f"one worker, OMP_NUM_THREADS=1{', pinned' if opts.pin else ''}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"| server | {unit} | x floor | write calls/req | client p50 ms |")
    print("|---|---|---|---|---|")
    for label, r in results.items():
        shown = f"{r.cost:,.0f}" if opts.callgrind else f"{r.cost:.1f}"
        print(f"| {label} | {shown} | {r.cost / floor:.2f} | {r.writes:.2f} | {r.p50_ms:.3f} |")


if __name__ == "__main__":
    main()
