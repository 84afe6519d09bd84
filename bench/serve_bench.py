"""Serving benchmark: what `modelport serve` sustains per model, protocol and concurrency.

One run builds the fixed models (bench/models.py) into a temporary registry, times them
in-process (the ceiling), starts the server as a subprocess with OpenMP pinned to one thread,
checks that it answers the same labels as the in-process model, drives single-row requests
at several concurrencies and prints one table. The numbers are only comparable within one
run: identical runs on this machine differ by up to ~25% (see bench/README.md).

    .venv/bin/python bench/serve_bench.py [--quick] [--duration 10] [--protocols v1,v2,mlflow]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

import load
import report
from models import (
    BenchModel,
    build_models,
    check_rows,
    register,
    time_in_process,
)
from targets import ENDPOINTS, Endpoint, Target, modelport_target, running

CONCURRENCY = (1, 16, 64)


@dataclass(frozen=True, slots=True)
class Options:
    duration_s: float
    warmup_s: float
    in_process_budget_s: float
    protocols: tuple[str, ...]
    models: tuple[str, ...]
    concurrency: tuple[int, ...]
    floor: bool
    bulk_rows: int
    port: int
    json_path: Path | None


@dataclass(slots=True)
class Results:
    """Everything one run measured; ``--json`` writes it as is."""

    system: dict[str, Any]
    options: dict[str, Any]
    in_process: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class MismatchError(SystemExit):
    """The server answered other labels than the model it serves: no number would mean much."""


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    results = Results(report.system_info(), _jsonable(asdict(opts)))
    print(f"modelport serving benchmark — {results.system['date']}", flush=True)
    models = {name: m for name, m in build_models().items() if name in opts.models}
    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        home = Path(tmp) / "home"
        register(models, home)
        measure_in_process(models, home, opts, results)
        target = modelport_target(home, opts.port, tuple(models))
        measure_server(target, models, opts, results)
    report.print_results(results)
    if opts.json_path is not None:
        report.write_json(results, opts.json_path)
        print(f"raw numbers written to {opts.json_path}")
    return 0


def measure_in_process(
    models: dict[str, BenchModel], home: Path, opts: Options, results: Results
) -> None:
    """The ceiling: the model alone, and the model behind modelport's own call path.

    Other processes' CPU during the timing is kept per model: a busy neighbour slows these
    lines as much as the served ones.
    """
    for model in models.values():
        print(f"timing {model.name} in-process ...", flush=True)
        wall0, own0, machine0 = time.monotonic(), time.process_time(), load.machine_cpu_seconds()
        timings = time_in_process(model, home, opts.in_process_budget_s)
        wall = time.monotonic() - wall0
        other = (load.machine_cpu_seconds() - machine0) - (time.process_time() - own0)
        for timing in timings:
            results.in_process.append(
                {
                    **asdict(timing),
                    "rows_per_s": timing.rows_per_s,
                    "wall_s": wall,
                    "other_cpu_s": max(0.0, other),
                }
            )


def measure_server(
    target: Target, models: dict[str, BenchModel], opts: Options, results: Results
) -> None:
    """Start the target, check it answers correctly, then drive every point."""
    print(f"starting {' '.join(target.command)} ...", flush=True)
    with running(target) as server:
        endpoints = [e for e in target.endpoints if e.protocol in opts.protocols]
        usable = [e for e in endpoints if verify(server.url, e, models, results)]
        results.server["rss_mib_after_warmup"] = server.rss_mib()
        results.server.update(command=" ".join(target.command), env=target.env, pids=server.pids())
        if opts.floor:
            floor = load.Request(server.host, server.port, "GET", target.floor_path)
            drive(floor, "-", f"HTTP floor (GET {target.floor_path})", server.pids(), opts, results)
        for model in models.values():
            for endpoint in usable:
                request = load.Request(
                    server.host,
                    server.port,
                    "POST",
                    endpoint.path(model.name),
                    endpoint.body(model.rows[:1].tolist()),
                )
                drive(request, model.name, endpoint.protocol, server.pids(), opts, results)
        bulk = [e for e in usable if e.protocol == "v2"]
        if bulk and opts.bulk_rows:
            for model in models.values():
                rows = np.resize(model.rows, (opts.bulk_rows, model.n_features)).tolist()
                request = load.Request(
                    server.host, server.port, "POST", bulk[0].path(model.name), bulk[0].body(rows)
                )
                drive(
                    request,
                    model.name,
                    f"v2, {opts.bulk_rows} rows per request",
                    server.pids(),
                    opts,
                    results,
                    levels=(1,),
                    rows=opts.bulk_rows,
                )
        results.server["rss_mib_end"] = server.rss_mib()


def verify(url: str, endpoint: Endpoint, models: dict[str, BenchModel], results: Results) -> bool:
    """False (with a note) when the protocol does not answer; abort when labels differ."""
    import httpx

    for model in models.values():
        for rows in (model.rows[:1], check_rows(model)):
            expected = model.estimator.predict(rows).tolist()
            response = httpx.post(
                url + endpoint.path(model.name),
                timeout=30,
                content=endpoint.body(rows.tolist()),
                headers={"Content-Type": "application/json"},
            )
            if response.status_code != 200:
                note = (
                    f"skipped protocol {endpoint.protocol}: first request to "
                    f"{endpoint.path(model.name)} answered {response.status_code} "
                    f"{response.text[:200]!r}"
                )
                print(note, flush=True)
                results.notes.append(note)
                return False
            served = endpoint.labels(response.json())
            if served != expected:
                raise MismatchError(
                    f"ABORT: {endpoint.protocol} {model.name} served labels {served} for "
                    f"{len(rows)} rows, the in-process model predicts {expected}"
                )
    print(f"{endpoint.protocol}: served labels match in-process predict", flush=True)
    return True


def drive(
    request: load.Request,
    model: str,
    protocol: str,
    server_pids: list[int],
    opts: Options,
    results: Results,
    levels: tuple[int, ...] | None = None,
    rows: int = 1,
) -> None:
    for concurrency in levels or opts.concurrency:
        print(
            f"  {model} {protocol} c={concurrency} for {opts.duration_s:g}s ...", end="", flush=True
        )
        result = load.run(request, concurrency, opts.duration_s, opts.warmup_s, server_pids)
        print(f" {result.req_per_s:,.0f} req/s", flush=True)
        results.points.append(
            {
                "model": model,
                "protocol": protocol,
                **asdict(result),
                "req_per_s": result.req_per_s,
                "rows_per_request": rows,
            }
        )


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, help="seconds per point (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds before each point (default 2)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 s points after 1 s warm-up, short in-process timing: smoke runs",
    )
    parser.add_argument("--protocols", default="v1", help="comma list of v1, v2, mlflow")
    parser.add_argument("--models", default="small,medium")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the GET /healthz points (the HTTP floor)"
    )
    parser.add_argument(
        "--bulk-rows",
        type=int,
        default=1000,
        help="rows in the one-request V2 bulk point (0: skip it)",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw numbers here")
    args = parser.parse_args(argv)
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    unknown = set(protocols) - {e.protocol for e in ENDPOINTS}
    if unknown:
        parser.error(f"unknown protocol(s): {', '.join(sorted(unknown))}")
    return Options(
        duration_s=args.duration or (3.0 if args.quick else 10.0),
        warmup_s=args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0),
        in_process_budget_s=0.3 if args.quick else 1.0,
        protocols=protocols,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        floor=not args.no_floor,
        bulk_rows=args.bulk_rows,
        port=args.port,
        json_path=args.json,
    )


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in value.items()}


if __name__ == "__main__":
    sys.exit(main())
