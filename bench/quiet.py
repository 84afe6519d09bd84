"""Waiting for a quiet machine before measuring, on 2 cores shared with other people's work.

Two benchmarks at once measure each other, and a neighbour's test run takes CPU the server
would get. Both only lower numbers, and by different amounts per server, which would bend the
ratios compare.py prints; so the run waits (bounded) and says so when it measured anyway.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import load
from targets import descendants

QUIET_SHARE = 0.25  # of a core: what report.py flags as a busy neighbour during a point
SAMPLE_S = 3.0
BENCH_SCRIPTS = ("serve_bench.py", "compare.py", "bench/load.py")
POLL_S = 15.0


def wait_for_quiet(max_wait_s: float) -> str:
    """'' once quiet; otherwise, after ``max_wait_s``, why the machine still was not.

    Quiet means no other benchmark running and the rest of the machine using less than
    QUIET_SHARE of a core over a short window. It is measured from /proc/stat between two
    servers, when we use nothing: the load average would still remember our own load.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        others = other_benchmarks()
        share = 0.0 if others else busy_share(SAMPLE_S)
        if not others and share < QUIET_SHARE:
            return ""
        why = (
            f"other benchmark(s) running: {others}"
            if others
            else f"other processes use {share:.0%} of a core"
        )
        if time.monotonic() >= deadline:
            return why
        print(f"{why}: waiting ...", flush=True)
        time.sleep(POLL_S)


def busy_share(seconds: float) -> float:
    """CPU the whole machine used over ``seconds``, in cores (we sleep meanwhile)."""
    before = load.machine_cpu_seconds()
    time.sleep(seconds)
    return (load.machine_cpu_seconds() - before) / seconds


def other_benchmarks() -> list[str]:
    """Benchmark processes (this harness or wrk) outside our own process tree and ancestry."""
    own = {os.getpid(), *descendants(os.getpid()), *_ancestors(os.getpid())}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        with contextlib.suppress(OSError, IndexError):
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if any(a.endswith(BENCH_SCRIPTS) for a in argv) or Path(argv[0]).name == "wrk":
                found.append(f"{entry.name} {' '.join(argv)[:80]}")
    return found


def _ancestors(pid: int) -> list[int]:
    """A wrapper such as ``timeout 3600 compare.py`` is us, not a neighbour."""
    found = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        found.append(pid)
    return found
