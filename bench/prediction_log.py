"""What the prediction log costs: the same model served with the log off and on (SQLite,
every request logged), at c=16 and c=64, in alternating rounds of one run.

Two `modelport serve` process groups share one registry; one writes every answered request
to the prediction log. Rounds alternate (off, on, off, on …) so a busy moment of the machine
lands on both; the table gives the median round of each and the ratio on/off, then the median
and range of each "on" round's ratio to the "off" round of the same pass (:mod:`rounds`).
With ``--spread 2`` each group is two one-worker servers instead, each driven by its own
generator on half the connections (:func:`targets.running_spread`).

    .venv/bin/python bench/prediction_log.py [--models small,medium] [--concurrency 16,64]
    .venv/bin/python bench/prediction_log.py --spread 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

import orjson

import load
from models import build_models
from rounds import PAIRED_HEADER, cpu_us_per_request, median_round, paired_ratio
from targets import Server, Target, modelport_target, running_spread


def prepare(home: Path, names: list[str]) -> None:
    import modelport
    from modelport.config import Settings

    settings = Settings(home=home)
    models = build_models()
    for name in names:
        modelport.log_model(models[name].estimator, name, models[name].rows[:5], settings=settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small,medium")
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--spread", type=int, default=0, help="one-worker servers per group")
    args = parser.parse_args(argv)
    names = args.models.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    models = build_models()
    with tempfile.TemporaryDirectory(prefix="mp-bench-log-") as tmp:
        home = Path(tmp) / "home"
        prepare(home, names)
        off = partial(modelport_target, home, 0, tuple(names))
        on = partial(_logging, off)
        spread = f", {args.spread} one-worker servers each" if args.spread > 1 else ""
        print(
            f"load: {load.generator_name()}, {args.rounds} x {args.duration:g} s per target{spread}"
        )
        print(
            f"{'model':8} {'c':>3} {'log':4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'CPU µs/req':>10} {'ratio':>6}  {PAIRED_HEADER}"
        )
        with ExitStack() as stack:
            servers = {"off": stack.enter_context(running_spread(off, args.spread))}
            servers["on"] = stack.enter_context(running_spread(on, args.spread))
            for name in names:
                body = orjson.dumps({"instances": models[name].rows[:1].tolist()})
                for concurrency in levels:
                    _compare(servers, name, body, concurrency, args)
    return 0


def _logging(make: Callable[[], Target]) -> Target:
    """The target ``make`` builds, with every request logged."""
    target = make()
    return replace(target, env={**target.env, "MODELPORT_PREDICTION_LOG": "true"})


def _compare(
    servers: dict[str, list[Server]],
    name: str,
    body: bytes,
    concurrency: int,
    args: argparse.Namespace,
) -> None:
    rounds: dict[str, list[load.LoadResult]] = {label: [] for label in servers}
    path = f"/v1/models/{name}:predict"
    for _ in range(args.rounds):
        for label, group in servers.items():
            points = [(load.Request(s.host, s.port, "POST", path, body), s.pids()) for s in group]
            rounds[label].append(load.run_spread(points, concurrency, args.duration, 1.0))
    baseline = median_round(rounds["off"])
    for label, results in rounds.items():
        result = median_round(results)
        errors = sum(r.errors for r in results)
        print(
            f"{name:8} {concurrency:3} {label:4} {result.req_per_s:8.0f} {result.p50_ms:7.2f} "
            f"{result.p99_ms:7.2f} {cpu_us_per_request(result):10.0f} "
            f"{result.req_per_s / baseline.req_per_s:6.2f}  {paired_ratio(results, rounds['off'])}"
            + (f"  ({errors} errors)" if errors else "")
        )


if __name__ == "__main__":
    sys.exit(main())
