"""What a deployment costs: a 90/10 split, one with a 100 % shadow, and one running an A/B
experiment, against the primary alone.

One `modelport serve` process group serves a model (`NAME`) and three deployments over two
versions of it: `NAME-split` (90 % version 1, 10 % version 2), `NAME-shadow` (the same,
with version 2 also mirrored on every request) and `NAME-experiment` (the same split, with an
experiment randomising every request: each request is a new unit whose exposure is written,
the most an experiment can cost). All answer the same single-row requests in
the same run, measured in alternating rounds (A B C A B C …) so a busy moment of the machine
lands on each; the table gives the median round of each and its ratio to the primary alone,
then the median and range of each round's ratio to the primary's round of the same pass
(:mod:`rounds`).

With ``--spread 2`` two one-worker servers answer instead, each driven by its own generator on
half the connections (:func:`targets.running_spread`).

    .venv/bin/python bench/deployments.py [--models small,medium] [--duration S] [--rounds N]
    .venv/bin/python bench/deployments.py --spread 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: siblings import

import orjson

import load
from models import build_models
from rounds import PAIRED_HEADER, cpu_us_per_request, median_round, paired_ratio
from targets import Target, modelport_target, running_spread


def deployment_yaml(model: str, suffix: str, shadow: bool) -> str:
    mirror = f"    - {{model: {model}/2, role: shadow, weight: 100}}\n" if shadow else ""
    experiment = (
        f"""---
apiVersion: modelport/v1
kind: Experiment
metadata:
  name: {model}-ab
spec:
  deployment: {model}-{suffix}
  unit: request
  primaryMetric: {{name: bought, type: binary}}
  ramp: {{steps: [100]}}
"""
        if suffix == "experiment"
        else ""
    )
    return f"""apiVersion: modelport/v1
kind: ModelDeployment
metadata:
  name: {model}-{suffix}
spec:
  strategy: direct
  slots:
    - {{model: {model}/1, role: primary, weight: 90}}
    - {{model: {model}/2, role: canary, weight: 10}}
{mirror}{experiment}"""


KINDS = ("split", "shadow", "experiment")


def prepare(home: Path, names: list[str]) -> None:
    """Each model registered twice (two versions doing the same work) and its deployment."""
    import modelport
    from modelport import documents
    from modelport.config import Settings
    from modelport.experiments import spec as experiment_spec
    from modelport.experiments.store import ExperimentStore
    from modelport.registry import Registry
    from modelport.rollout import spec as rollout_spec
    from modelport.rollout.store import DeploymentStore

    settings = Settings(home=home)
    models = build_models()
    registry = Registry.from_settings(settings)
    for name in names:
        for _ in range(2):
            modelport.log_model(
                models[name].estimator, name, models[name].rows[:5], settings=settings
            )
        validators = {
            rollout_spec.KIND: rollout_spec.validate,
            experiment_spec.KIND: experiment_spec.validate,
        }
        for suffix in KINDS:
            text = deployment_yaml(name, suffix, shadow=suffix == "shadow")
            for spec in documents.load_yaml(text, validators, source="bench"):
                if isinstance(spec, rollout_spec.DeploymentSpec):
                    DeploymentStore(registry).apply(spec)
                else:
                    assert isinstance(spec, experiment_spec.ExperimentSpec)
                    ExperimentStore(registry).apply(spec)
                    ExperimentStore(registry).start(spec.name)
    registry.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small,medium")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--spread", type=int, default=0, help="one-worker servers instead")
    args = parser.parse_args(argv)
    names = args.models.split(",")
    models = build_models()
    with tempfile.TemporaryDirectory(prefix="mp-bench-deploy-") as tmp:
        home = Path(tmp) / "home"
        prepare(home, names)
        deployments = [f"--deployment={name}-{kind}" for name in names for kind in KINDS]

        def target() -> Target:
            plain = modelport_target(home, 0, tuple(names))
            return replace(plain, command=(*plain.command, *deployments))

        print(
            f"load: {load.generator_name()}, c={args.concurrency}, "
            f"{args.rounds} x {args.duration:g} s per target, alternating"
            + (f", {args.spread} one-worker servers" if args.spread > 1 else "")
        )
        print(
            f"{'model':8} {'target':24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'CPU µs/req':>10} {'ratio':>6}  {PAIRED_HEADER}"
        )
        with running_spread(target, args.spread) as servers:
            for name in names:
                row = orjson.dumps({"instances": models[name].rows[:1].tolist()})
                paths = {
                    "primary alone": f"/v1/models/{name}:predict",
                    "90/10 split": f"/v1/models/{name}-split:predict",
                    "90/10 + 100 % shadow": f"/v1/models/{name}-shadow:predict",
                    "90/10 + experiment": f"/v1/models/{name}-experiment:predict",
                }
                rounds: dict[str, list[load.LoadResult]] = {label: [] for label in paths}
                for _ in range(args.rounds):
                    for label, path in paths.items():
                        points = [
                            (load.Request(s.host, s.port, "POST", path, row), s.pids())
                            for s in servers
                        ]
                        rounds[label].append(
                            load.run_spread(points, args.concurrency, args.duration, 1.0)
                        )
                alone = median_round(rounds["primary alone"])
                for label, results in rounds.items():
                    result = median_round(results)
                    errors = sum(r.errors for r in results)
                    print(
                        f"{name:8} {label:24} {result.req_per_s:8.0f} {result.p50_ms:7.2f} "
                        f"{result.p99_ms:7.2f} {cpu_us_per_request(result):10.0f} "
                        f"{result.req_per_s / alone.req_per_s:6.2f}  "
                        f"{paired_ratio(results, rounds['primary alone'])}"
                        + (f"  ({errors} errors)" if errors else "")
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
