"""One table per run, with the machine and versions it was measured on.

A number without its machine, versions and load generator cannot be compared with anything,
so they are printed above the table and kept in the JSON next to the raw numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import load

COLUMNS = (
    "model",
    "protocol",
    "conc.",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "rows/s",
    "server CPU",
    "loadgen CPU",
    "other CPU",
    "server µs CPU/req",
)
NOISY_OTHER_CPU = 0.25  # other processes using more than a quarter of a core: flag the point


def system_info() -> dict[str, Any]:
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{
            name: _version(name)
            for name in (
                "numpy",
                "scikit-learn",
                "modelport",
                "uvicorn",
                "fastapi",
                "uvloop",
                "orjson",
            )
        },
        "git_commit": _git_commit(),
        "loadavg": round(os.getloadavg()[0], 2),
        "load_generator": load.generator_name(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """HEAD of the checkout the bench runs from, marked when the tree has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def table_rows(results: Any) -> list[tuple[str, ...]]:
    """Served points first, then the in-process ceiling in the same units (rows/s)."""
    rows = []
    for p in results.points:
        per_req = p["server_cpu_s"] / p["requests"] * 1e6 if p["requests"] else 0.0
        rows.append(
            (
                p["model"],
                p["protocol"],
                str(p["concurrency"]),
                f"{p['req_per_s']:,.0f}",
                f"{p['p50_ms']:.2f}",
                f"{p['p99_ms']:.2f}",
                str(p["errors"]),
                f"{p['req_per_s'] * p.get('rows_per_request', 1):,.0f}",
                _pct(p["server_cpu_s"], p["duration_s"]),
                _pct(p["client_cpu_s"], p["duration_s"]),
                _pct(other_cpu_s(p), p["duration_s"]),
                f"{per_req:,.0f}",
            )
        )
    for t in results.in_process:
        calls = 1e6 / t["median_us"]
        label = f"in-process {t['path']}, batch {t['rows_per_call']}"
        rows.append(
            (
                t["model"],
                label,
                "-",
                f"{calls:,.0f} calls/s",
                f"{t['median_us'] / 1e3:.3f}",
                "",
                "",
                f"{t['rows_per_s']:,.0f}",
                "",
                "",
                _pct(t["other_cpu_s"], t["wall_s"]),
                "",
            )
        )
    return rows


def other_cpu_s(point: dict[str, Any]) -> float:
    """CPU that neither the server nor the load generator used: someone else's work."""
    return max(0.0, point["machine_cpu_s"] - point["server_cpu_s"] - point["client_cpu_s"])


def noise_warnings(results: Any) -> list[str]:
    """Rows whose numbers are lower than true: a busy neighbour, or a saturated client."""

    def name(p: dict[str, Any]) -> str:  # bench/compare.py points also carry a server
        return " ".join(
            filter(None, (p.get("server"), p["model"], p["protocol"], f"c={p['concurrency']}"))
        )

    warnings = []
    saturated = [name(p) for p in results.points if p["client_cpu_s"] > 0.8 * p["duration_s"]]
    if saturated:
        warnings.append(
            f"WARNING: the load generator used over 80% of a core during "
            f"{', '.join(saturated)}: it, not the server, may be the limit there."
        )
    noisy = [name(p) for p in results.points if other_cpu_s(p) > NOISY_OTHER_CPU * p["duration_s"]]
    noisy += sorted(
        {
            f"{t['model']} in-process"
            for t in results.in_process
            if t["other_cpu_s"] > NOISY_OTHER_CPU * t["wall_s"]
        }
    )
    if noisy:
        warnings.append(
            f"WARNING: other processes used more than {NOISY_OTHER_CPU:.0%} of a core during "
            f"{len(noisy)} measurement(s) ({', '.join(noisy)}); load average at start "
            f"{results.system['loadavg']}, at end {os.getloadavg()[0]:.2f}. "
            "Re-run on a quiet machine before trusting those rows."
        )
    return warnings


def _pct(cpu_s: float, wall_s: float) -> str:
    return f"{cpu_s / wall_s * 100:.0f}%" if wall_s else ""


def header_lines(results: Any) -> list[str]:
    s, o, srv = results.system, results.options, results.server
    return [
        f"date {s['date']}   nproc {s['nproc']}   CPU {s['cpu_model']}   kernel {s['kernel']}",
        f"python {s['python']}   numpy {s['numpy']}   scikit-learn {s['scikit-learn']}   "
        f"modelport {s['modelport']} ({s['git_commit']})   uvicorn {s['uvicorn']}   "
        f"uvloop {s['uvloop']}",
        f"server: {srv.get('command', '?')}   env {srv.get('env', {})}",
        f"load average at start {s['loadavg']}   "
        f"server RSS after warm-up {srv.get('rss_mib_after_warmup', '?')} MiB, "
        f"at the end {srv.get('rss_mib_end', '?')} MiB (process + children)",
        f"load: {s['load_generator']}; closed loop, single-row bodies, {o['duration_s']:g} s per "
        f"point after {o['warmup_s']:g} s warm-up",
        f"NOTE: the load generator shares the {s['nproc']} cores with the server; CPU columns "
        "are % of one core during the window (other = every other process on the machine). "
        "Runs differ by up to ~25%: compare within a run.",
    ]


def print_results(results: Any) -> None:
    lines = header_lines(results)
    rows = table_rows(results)
    n_served = len(results.points)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(lines, rows, n_served, results.notes + noise_warnings(results))
        return
    table = Table(title="modelport serving benchmark", title_justify="left")
    for index, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if index < 2 else "right")
    for index, row in enumerate(rows):
        if index == n_served:
            table.add_section()
        table.add_row(*row)
    console = Console(width=max(160, Console().width))
    console.print(table)
    for line in lines + results.notes + noise_warnings(results):
        console.print(line, highlight=False, markup=False)


def _print_plain(
    lines: list[str], rows: list[tuple[str, ...]], n_served: int, notes: list[str]
) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for index, row in enumerate(rows):
        if index == n_served:
            print("-" * (sum(widths) + 2 * len(widths)))
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    for line in lines + notes:
        print(line)


def write_json(results: Any, path: Path) -> None:
    data = {
        k: getattr(results, k)
        for k in ("system", "options", "server", "in_process", "points", "notes")
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
