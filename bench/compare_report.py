"""The comparison table: every server, model and concurrency of one run, with modelport's ratios.

Rows are grouped by (model, concurrency) so the servers that answered the same load sit next to
each other, and each row carries two ratios computed inside the run: its req/s as a share of
the constant-FastAPI floor, and modelport's req/s divided by its own (modelport on the same
protocol when it was measured on it, otherwise on its first protocol). Versions of every peer
actually used, and what its install took, are printed above the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import report

COLUMNS = (
    "model",
    "c",
    "server",
    "protocol",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "RSS MiB",
    "server CPU",
    "µs CPU/req",
    "of floor 1w",
    "of floor Nw",
    "modelport x",
)
FLOORS = ("fastapi-const", "fastapi-const-N")
"""The constant-answer floor with one worker, and with as many workers as modelport runs."""


def _key(point: dict[str, Any]) -> tuple[str, int]:
    return point["model"], point["concurrency"]


def modelport_point(
    point: dict[str, Any], points: list[dict[str, Any]], protocols: list[str]
) -> dict[str, Any] | None:
    """modelport at the same model and c: on the row's protocol if measured, else its first."""
    own = {
        p["protocol"]: p for p in points if p["server"] == "modelport" and _key(p) == _key(point)
    }
    for protocol in (point["protocol"], *protocols):
        if protocol in own:
            return own[protocol]
    return None


def ratios(
    point: dict[str, Any], points: list[dict[str, Any]], protocols: list[str]
) -> tuple[float | None, float | None, float | None]:
    """(share of each floor, modelport ÷ this); None where a side is missing or zero."""
    shares: list[float | None] = []
    for name in FLOORS:
        floor = next((p for p in points if p["server"] == name and _key(p) == _key(point)), None)
        shares.append(
            point["req_per_s"] / floor["req_per_s"] if floor and floor["req_per_s"] else None
        )
    mine = modelport_point(point, points, protocols)
    versus = None
    if point["server"] != "modelport" and mine is not None and point["req_per_s"]:
        versus = mine["req_per_s"] / point["req_per_s"]
    return shares[0], shares[1], versus


def ordered(results: Any) -> list[dict[str, Any]]:
    """By model (as measured), then concurrency, then the order servers were measured in."""
    models = list(dict.fromkeys(p["model"] for p in results.points))
    servers = list(dict.fromkeys(p["server"] for p in results.points))
    return sorted(
        results.points,
        key=lambda p: (models.index(p["model"]), p["concurrency"], servers.index(p["server"])),
    )


def table_rows(results: Any) -> list[tuple[str, ...]]:
    protocols = results.options["modelport_protocols"]
    rows = []
    for p in ordered(results):
        one, many, versus = ratios(p, results.points, list(protocols))
        per_req = p["server_cpu_s"] / p["requests"] * 1e6 if p["requests"] else 0.0
        cpu = p["server_cpu_s"] / p["duration_s"] * 100 if p["duration_s"] else 0.0
        rows.append(
            (
                p["model"],
                str(p["concurrency"]),
                p["server"],
                p["protocol"],
                f"{p['req_per_s']:,.0f}",
                f"{p['p50_ms']:.2f}",
                f"{p['p99_ms']:.2f}",
                str(p["errors"]),
                f"{p['rss_mib']:.0f}",
                f"{cpu:.0f}%",
                f"{per_req:,.0f}",
                "" if one is None else f"{one:.0%}",
                "" if many is None else f"{many:.0%}",
                "" if versus is None else f"{versus:.2f}x",
            )
        )
    return rows


def header_lines(results: Any) -> list[str]:
    s, o = results.system, results.options
    lines = [
        f"date {s['date']}   nproc {s['nproc']}   CPU {s['cpu_model']}   kernel {s['kernel']}   "
        f"load average when measuring began {s['loadavg']}",
        f"modelport {s['modelport']}, measured: {s.get('modelport_measured', '-')}   "
        f"python {s['python']}   "
        f"numpy {s['numpy']}   scikit-learn {s['scikit-learn']}   uvicorn {s['uvicorn']}   "
        f"uvloop {s['uvloop']}",
    ]
    for name, peer in results.peers.items():
        versions = "  ".join(f"{k} {v}" for k, v in peer["versions"].items())
        how = "reused venv, built" if peer["reused"] else "installed"
        lines.append(
            f"peer venv {name}: {versions}   ({how} in {peer['install_s']:g} s, {peer['path']})"
        )
    for name, info in results.servers.items():
        lines.append(
            f"started {name} in {info['start_s']:g} s, RSS when ready "
            f"{info['rss_mib_ready']:.0f} MiB: {info['command']}"
        )
    lines += [
        f"load generator (own process): {s['load_generator']}; closed loop, single-row bodies, "
        f"{o['duration_s']:g} s per point after {o['warmup_s']:g} s warm-up; RSS = server "
        "process tree at the end of the point; OMP/BLAS threads = 1 for every server",
        "of floor 1w / Nw = req/s ÷ constant FastAPI with 1 worker / with as many workers as "
        "modelport, at the same model and c; modelport x = modelport "
        "req/s ÷ this row's (modelport on the same protocol where measured, else "
        f"{o['modelport_protocols'][0]}). Runs differ by up to ~25%: trust ratios over ~1.3x.",
    ]
    return lines


def print_comparison(results: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="modelport vs peers", title_justify="left")
    for index, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if index < 4 and index != 1 else "right")
    previous = None
    for row in table_rows(results):
        if previous is not None and row[:2] != previous:
            table.add_section()
        table.add_row(*row)
        previous = row[:2]
    console = Console(width=max(170, Console().width))
    console.print(table)
    for line in header_lines(results) + results.notes + report.noise_warnings(results):
        console.print(line, highlight=False, markup=False)


def write_json(results: Any, path: Path) -> None:
    keys = ("system", "options", "peers", "servers", "points", "notes")
    data = {k: getattr(results, k) for k in keys}
    data["ratios"] = [
        {
            "server": p["server"],
            "model": p["model"],
            "protocol": p["protocol"],
            "concurrency": p["concurrency"],
            "of_floor_one_worker": one,
            "of_floor_same_workers": many,
            "modelport_over_this": versus,
        }
        for p in results.points
        for one, many, versus in [
            ratios(p, results.points, list(results.options["modelport_protocols"]))
        ]
    ]
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
