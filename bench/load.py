"""Closed-loop HTTP load: ``concurrency`` keep-alive connections, one request in flight each.

Uses ``wrk`` when it is on PATH (C, cheapest on the shared cores); otherwise this module runs
itself as a separate process (``python bench/load.py ...``) with raw asyncio streams: one
pre-encoded HTTP/1.1 request, the response read by Content-Length, so the client spends as
little CPU as Python allows and never parses JSON. Either way the result is a :class:`LoadResult`
and the CPU the client and the server burned during the measured window, because on a 2-core
machine every cycle the client takes is a cycle the server does not get.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, sent again and again (loopback, so no TLS and no Host games)."""

    host: str
    port: int
    method: str
    path: str
    body: bytes = b""

    def encode(self) -> bytes:
        head = (
            f"{self.method} {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
            "Connection: keep-alive\r\n\r\n"
        )
        return head.encode() + self.body


@dataclass(frozen=True, slots=True)
class LoadResult:
    concurrency: int
    duration_s: float
    requests: int  # answered with 200 inside the window
    errors: int  # non-200 answers plus broken connections
    p50_ms: float
    p99_ms: float
    client_cpu_s: float
    server_cpu_s: float
    machine_cpu_s: float  # every process on the machine; the rest is other people's load
    generator: str

    @property
    def req_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU of ``pids`` so far, from /proc (0 for a pid that is gone)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
        total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def run(
    request: Request, concurrency: int, duration_s: float, warmup_s: float, server_pids: list[int]
) -> LoadResult:
    """One measured point with whichever generator is available (wrk preferred)."""
    if shutil.which("wrk"):
        return _run_wrk(request, concurrency, duration_s, warmup_s, server_pids)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        request.host,
        str(request.port),
        request.method,
        request.path,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration_s),
        "--warmup",
        str(warmup_s),
        "--server-pids",
        ",".join(map(str, server_pids)),
    ]
    done = subprocess.run(
        cmd,
        input=request.body,
        capture_output=True,
        check=False,
        timeout=duration_s + warmup_s + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    return LoadResult(**json.loads(done.stdout))


def run_spread(
    points: list[tuple[Request, list[int]]], concurrency: int, duration_s: float, warmup_s: float
) -> LoadResult:
    """One measured point over several servers of one target at once (``points``: each one's
    request and processes), each with its own generator and an equal share of the
    connections. Counts and CPU add up; p50 is the generators' mean, p99 their highest."""
    if len(points) == 1:
        request, pids = points[0]
        return run(request, concurrency, duration_s, warmup_s, pids)
    share = concurrency // len(points)
    with ThreadPoolExecutor(len(points)) as pool:
        results = list(
            pool.map(lambda point: run(point[0], share, duration_s, warmup_s, point[1]), points)
        )
    return LoadResult(
        concurrency=share * len(points),
        duration_s=statistics.fmean(r.duration_s for r in results),
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        p50_ms=statistics.fmean(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        client_cpu_s=sum(r.client_cpu_s for r in results),
        server_cpu_s=sum(r.server_cpu_s for r in results),
        machine_cpu_s=statistics.fmean(r.machine_cpu_s for r in results),
        generator=results[0].generator,
    )


def generator_name() -> str:
    if wrk := shutil.which("wrk"):
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        return (out.stdout or out.stderr).split("\n")[0].strip() or "wrk"
    try:
        import uvloop

        return f"bench/load.py (asyncio + uvloop {uvloop.__version__})"
    except ImportError:
        return "bench/load.py (asyncio)"


# -- built-in generator (runs in its own process) ---------------------------------------------


async def _connection(
    raw: bytes,
    req: Request,
    stop_ns: int,
    window_start_ns: int,
    latencies: list[int],
    counts: dict[str, int],
) -> None:
    """Send, read the answer, repeat; record only requests that start inside the window."""
    reader = writer = None
    while time.perf_counter_ns() < stop_ns:
        start = time.perf_counter_ns()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(req.host, req.port)
            assert reader is not None
            writer.write(raw)
            status, keep_alive = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, keep_alive = 0, False
        end = time.perf_counter_ns()
        if start >= window_start_ns and end <= stop_ns:
            if status == 200:
                latencies.append(end - start)
            else:
                counts["errors"] += 1
        if not keep_alive and writer is not None:
            writer.close()
            writer = None
        if status == 0:
            await asyncio.sleep(0.01)  # a refused connection must not spin the client core
    if writer is not None:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the connection stays open; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep_alive = None, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    return status, keep_alive


async def _drive(
    req: Request, concurrency: int, duration_s: float, warmup_s: float, server_pids: list[int]
) -> LoadResult:
    raw = req.encode()
    now = time.perf_counter_ns()
    window_start = now + int(warmup_s * 1e9)
    stop = window_start + int(duration_s * 1e9)
    latencies: list[int] = []
    counts = {"errors": 0}
    tasks = [
        asyncio.create_task(_connection(raw, req, stop, window_start, latencies, counts))
        for _ in range(concurrency)
    ]
    await asyncio.sleep(max(0.0, (window_start - time.perf_counter_ns()) / 1e9))
    client0, server0 = time.process_time(), cpu_seconds(server_pids)
    machine0 = machine_cpu_seconds()
    await asyncio.sleep(max(0.0, (stop - time.perf_counter_ns()) / 1e9))
    client1, server1 = time.process_time(), cpu_seconds(server_pids)
    machine1 = machine_cpu_seconds()
    await asyncio.gather(*tasks)
    latencies.sort()
    return LoadResult(
        concurrency,
        duration_s,
        len(latencies),
        counts["errors"],
        _percentile(latencies, 50) / 1e6,
        _percentile(latencies, 99) / 1e6,
        client1 - client0,
        server1 - server0,
        machine1 - machine0,
        generator_name(),
    )


def _percentile(ordered: list[int], q: float) -> float:
    """Nearest-rank percentile of sorted data (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))
    return float(ordered[int(rank) - 1])


# -- wrk --------------------------------------------------------------------------------------

_WRK_LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d %d\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50),
    latency:percentile(99), summary.duration, e.status, e.connect, e.timeout))
end
"""


def _run_wrk(
    req: Request, concurrency: int, duration_s: float, warmup_s: float, server_pids: list[int]
) -> LoadResult:
    """wrk with one thread (the server needs the other core); warm-up is a separate run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_LUA.format(method=req.method, body=req.body.decode()))
    url = f"http://{req.host}:{req.port}{req.path}"

    def wrk(seconds: float) -> str:
        cmd = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    try:
        if warmup_s > 0:
            wrk(warmup_s)
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server0, machine0 = cpu_seconds(server_pids), machine_cpu_seconds()
        out = wrk(duration_s)
        server1, machine1 = cpu_seconds(server_pids), machine_cpu_seconds()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(script.name)
    match = re.search(r"^BENCH ((?:\d+ ?){8})$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    total, errors, p50_us, p99_us, duration_us, *_ = map(int, match.group(1).split())
    client = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    # wrk counts a non-2xx/3xx answer both as a request and as an error
    return LoadResult(
        concurrency,
        duration_us / 1e6,
        total - errors,
        errors,
        p50_us / 1e3,
        p99_us / 1e3,
        client,
        server1 - server0,
        machine1 - machine0,
        generator_name(),
    )


def main() -> None:
    """Entry point of the generator process: request body on stdin, LoadResult JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("method")
    parser.add_argument("path")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-pids", default="")
    args = parser.parse_args()
    req = Request(args.host, args.port, args.method, args.path, sys.stdin.buffer.read())
    pids = [int(p) for p in args.server_pids.split(",") if p]
    drive = _drive(req, args.concurrency, args.duration, args.warmup, pids)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(drive)
    else:
        result = uvloop.run(drive)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
