"""modelport next to its peers, on the same models, in the same run, with the same load.

Peers (MLflow, BentoML, MLServer, two FastAPI baselines) run from their own virtualenvs under
/tmp (bench/peers.py) on service files generated from the harness models
(bench/peer_services.py). Each server is started alone, its labels are checked against the
in-process model, then the harness load generator drives single-row requests at each
concurrency. Ratios are only meaningful within one run: identical runs on this 2-core
machine differ by up to ~25% (PERF-NOTES.md), so every peer is measured in the run that
measures modelport.

    .venv/bin/python bench/compare.py [--duration S] [--quick] [--json PATH] [--peers ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

import httpx

import compare_report
import load
import peer_services
import peers
import quiet
import report
from models import BenchModel, build_models, register
from serve_bench import MismatchError, verify
from targets import ENDPOINTS, Endpoint, Server, running

# measured in this order; the floor first, so a busy machine shows up before anything else
SERVERS = (
    "fastapi-const",
    "fastapi-const-N",
    "fastapi-naive",
    "modelport",
    "mlserver-nobatch",
    "mlserver-batch",
    "bentoml",
    "mlflow",
)
GROUPS = {
    "fastapi": ("fastapi-const", "fastapi-const-N", "fastapi-naive"),
    "mlserver": ("mlserver-nobatch", "mlserver-batch"),
}
VENV_OF = {
    "fastapi-const": "fastapi",
    "fastapi-const-N": "fastapi",
    "fastapi-naive": "fastapi",
    "mlflow": "mlflow",
    "bentoml": "bentoml",
    "mlserver-nobatch": "mlserver",
    "mlserver-batch": "mlserver",
}


@dataclass(frozen=True, slots=True)
class Options:
    duration_s: float
    warmup_s: float
    servers: tuple[str, ...]
    modelport_protocols: tuple[str, ...]
    concurrency: tuple[int, ...]
    max_wait_s: float
    keep: bool
    working_tree: bool
    json_path: Path | None
    baseline: str | None = None
    modelport_workers: int | None = None


@dataclass(slots=True)
class Comparison:
    """Everything one run measured; ``--json`` writes it. Shaped for report.noise_warnings."""

    system: dict[str, Any]
    options: dict[str, Any]
    peers: dict[str, Any] = field(default_factory=dict)
    servers: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    in_process: list[dict[str, Any]] = field(default_factory=list)  # none here; kept for report


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    models = build_models()
    results = Comparison(
        report.system_info(),
        {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
    )
    print(
        f"modelport vs peers — {results.system['date']}, modelport {results.system['git_commit']}",
        flush=True,
    )
    venvs = install_peers(opts.servers, results)
    prefix = "modelport-compare-"
    with (
        contextlib.nullcontext(tempfile.mkdtemp(prefix=prefix))
        if opts.keep
        else tempfile.TemporaryDirectory(prefix=prefix)
    ) as tmp:
        work = Path(tmp)
        if opts.keep:
            print(f"generated services and server logs kept in {work}", flush=True)
        pickles = peer_services.export_pickles(models, work / "pickles")
        wait_until = time.monotonic() + opts.max_wait_s  # one budget for the whole run
        for index, server in enumerate(opts.servers):
            for deployment in deployments(server, venvs, models, pickles, work, opts, results):
                busy = quiet.wait_for_quiet(max(0.0, wait_until - time.monotonic()))
                if busy:
                    results.notes.append(
                        f"NOTE: {deployment.server} measured on a busy machine: {busy}"
                    )
                if index == 0:
                    results.system["loadavg"] = round(os.getloadavg()[0], 2)
                measure(deployment, models, opts, results)
    compare_report.print_comparison(results)
    if opts.json_path is not None:
        compare_report.write_json(results, opts.json_path)
        print(f"raw numbers written to {opts.json_path}")
    return 0


def install_peers(servers: tuple[str, ...], results: Comparison) -> dict[str, peers.Installed]:
    """The virtualenvs the selected servers need; a failed install becomes a note, not an abort."""
    import sklearn

    specs = peers.venvs(sklearn.__version__)
    installed: dict[str, peers.Installed] = {}
    for name in dict.fromkeys(VENV_OF[s] for s in servers if s in VENV_OF):
        outcome = peers.ensure(specs[name])
        if isinstance(outcome, str):
            note = f"{name}: not installed, left out: {outcome}"
            print(note, flush=True)
            results.notes.append(note)
            continue
        installed[name] = outcome
        results.peers[name] = {
            "path": str(outcome.path),
            "versions": outcome.versions,
            "install_s": outcome.install_s,
            "reused": outcome.reused,
        }
    return installed


def deployments(
    server: str,
    venvs: dict[str, peers.Installed],
    models: dict[str, BenchModel],
    pickles: dict[str, Path],
    work: Path,
    opts: Options,
    results: Comparison,
) -> list[peer_services.Deployment]:
    """What to start for ``server``: none when its venv is missing (already noted)."""
    if server == "modelport":
        register(models, work / "modelport-home")
        endpoints = tuple(e for e in ENDPOINTS if e.protocol in opts.modelport_protocols)
        deployment, source = peer_services.modelport(
            work, tuple(models), endpoints, opts.working_tree
        )
        results.system["modelport_measured"] = source
        chosen = [deployment]
        if opts.baseline is not None:
            chosen.append(peer_services.modelport_at(work, opts.baseline, tuple(models), endpoints))
        return [_with_workers(d, opts.modelport_workers) for d in chosen]
    venv = venvs.get(VENV_OF[server])
    if venv is None:
        return []
    if server.startswith("fastapi-"):
        # fastapi-const-N: the floor with as many workers as modelport runs (like for like)
        workers = (
            opts.modelport_workers or peer_services.MODELPORT_WORKERS
            if server == "fastapi-const-N"
            else 1
        )
        return [peer_services.fastapi(server == "fastapi-naive", venv, pickles, work, workers)]
    if server.startswith("mlserver-"):
        return [peer_services.mlserver(server == "mlserver-batch", venv, pickles, work)]
    if server == "bentoml":
        return [peer_services.bentoml(venv, pickles, work)]
    return peer_services.mlflow(venv, pickles, work)


def _with_workers(
    deployment: peer_services.Deployment, workers: int | None
) -> peer_services.Deployment:
    """modelport with ``--modelport-workers`` processes (default: its own, one per CPU)."""
    if workers is None:
        return deployment
    env = {**deployment.target.env, "MODELPORT_WORKERS": str(workers)}
    return replace(deployment, target=replace(deployment.target, env=env))


def measure(
    deployment: peer_services.Deployment,
    models: dict[str, BenchModel],
    opts: Options,
    results: Comparison,
) -> None:
    """Start one server, check its labels per model, drive every point, stop it.

    ``running`` aborts with SystemExit when a server never gets ready; for a peer that is a
    note and the run goes on with the next one.
    """
    target = deployment.target
    print(f"starting {deployment.server}: {' '.join(target.command)}", flush=True)
    started = time.monotonic()
    try:
        with running(target) as server:
            info = {
                "command": " ".join(target.command),
                "start_s": round(time.monotonic() - started, 1),
                "rss_mib_ready": server.rss_mib(),
            }
            results.servers[target.name] = info
            for name in deployment.models:
                for endpoint in target.endpoints:
                    if not deployment.checked or check(
                        server.url, endpoint, models[name], deployment.server, results
                    ):
                        drive(deployment.server, endpoint, models[name], server, opts, results)
    except SystemExit as exc:
        note = f"{deployment.server}: did not start, left out: {str(exc)[-1500:]}"
        print(note, flush=True)
        results.notes.append(note)


def check(
    url: str, endpoint: Endpoint, model: BenchModel, server: str, results: Comparison
) -> bool:
    """The harness check (request row + rows across the data set); wrong labels are reported."""
    try:
        return verify(url, endpoint, {model.name: model}, results)
    except MismatchError as exc:
        note = f"{server} {model.name}: WRONG LABELS, not measured: {exc}"
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        note = f"{server} {model.name}: unusable answer, not measured: {exc!r}"
    print(note, flush=True)
    results.notes.append(note)
    return False


def drive(
    server_name: str,
    endpoint: Endpoint,
    model: BenchModel,
    server: Server,
    opts: Options,
    results: Comparison,
) -> None:
    request = load.Request(
        server.host,
        server.port,
        "POST",
        endpoint.path(model.name),
        endpoint.body(model.rows[:1].tolist()),
    )
    for concurrency in opts.concurrency:
        print(
            f"  {server_name} {endpoint.protocol} {model.name} c={concurrency} "
            f"for {opts.duration_s:g}s ...",
            end="",
            flush=True,
        )
        result = load.run(request, concurrency, opts.duration_s, opts.warmup_s, server.pids())
        print(f" {result.req_per_s:,.0f} req/s", flush=True)
        results.points.append(
            {
                "server": server_name,
                "model": model.name,
                "protocol": endpoint.protocol,
                **asdict(result),
                "req_per_s": result.req_per_s,
                "rss_mib": server.rss_mib(),
            }
        )


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, help="seconds per point (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds before each point (default 2)")
    parser.add_argument("--quick", action="store_true", help="3 s points, 1 s warm-up: smoke")
    parser.add_argument(
        "--peers",
        default=",".join(s for s in SERVERS if s != "modelport"),
        help="comma list of "
        + ", ".join(s for s in SERVERS if s != "modelport")
        + ", or the groups fastapi, mlserver (modelport always runs)",
    )
    parser.add_argument("--modelport-protocols", default="v1,v2,mlflow")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=900.0,
        help="seconds, in total, to wait for a quiet machine",
    )
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="serve modelport from the working tree even when src/ has local "
        "changes (default: HEAD's src/, so the stated commit is what ran)",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="REF",
        help="also serve modelport at this commit, right after the current "
        "one, on the same models: before/after a change in one run",
    )
    parser.add_argument(
        "--modelport-workers",
        type=int,
        default=None,
        help="worker processes of modelport (and of fastapi-const-N); default one per CPU",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temp dir: generated services and *-server.log files",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write raw numbers here")
    args = parser.parse_args(argv)
    chosen = {"modelport"}
    for name in (n.strip() for n in args.peers.split(",") if n.strip()):
        if name not in GROUPS and name not in VENV_OF:
            parser.error(f"unknown peer {name!r}")
        chosen.update(GROUPS.get(name, (name,)))
    protocols = tuple(p.strip() for p in args.modelport_protocols.split(",") if p.strip())
    if not protocols or set(protocols) - {e.protocol for e in ENDPOINTS}:
        parser.error("--modelport-protocols: any of v1, v2, mlflow")
    return Options(
        duration_s=args.duration or (3.0 if args.quick else 10.0),
        warmup_s=args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0),
        servers=tuple(s for s in SERVERS if s in chosen),
        modelport_protocols=protocols,
        concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        max_wait_s=args.max_wait,
        keep=args.keep,
        working_tree=args.working_tree,
        json_path=args.json,
        baseline=args.baseline,
        modelport_workers=args.modelport_workers,
    )


if __name__ == "__main__":
    sys.exit(main())
