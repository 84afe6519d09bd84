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

from targets import descendants

QUIET_LOADAVG = 1.0  # 1-minute load average under which the machine counts as idle
BENCH_SCRIPTS = ("serve_bench.py", "compare.py", "bench/load.py")
POLL_S = 15.0


def wait_for_quiet(max_wait_s: float, check_load: bool) -> str:
    """'' once quiet; otherwise, after ``max_wait_s``, why the machine still was not.

    The load average is only worth checking before the first server: after it, our own load
    generator keeps it high.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        others = other_benchmarks()
        load_1m = os.getloadavg()[0]
        if not others and not (check_load and load_1m > QUIET_LOADAVG):
            return ""
        why = (f"other benchmark(s) running: {others}" if others
               else f"load average {load_1m:.2f} > {QUIET_LOADAVG}")
        if time.monotonic() >= deadline:
            return why
        print(f"{why}: waiting ...", flush=True)
        time.sleep(POLL_S)


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
