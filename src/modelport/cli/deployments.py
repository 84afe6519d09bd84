"""`modelport apply -f FILE` and `modelport deployments …`: deployments (and, through
``apply``, experiments) on the registry.

Like ``kubectl``, the commands work on the shared database directly; every serving replica
converges on a change within ``deployment_poll_s``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport import documents
from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry
from modelport.documents import Named
from modelport.errors import InvalidInputError
from modelport.experiments import spec as experiment_spec
from modelport.experiments.spec import ExperimentSpec
from modelport.experiments.store import ExperimentStore
from modelport.rollout import spec as rollout_spec
from modelport.rollout.spec import DeploymentSpec
from modelport.rollout.state import BY_OPERATOR, Action
from modelport.rollout.status import describe
from modelport.rollout.store import Deployment, DeploymentStore
from modelport.rollout.telemetry import Telemetry
from modelport.store.tables import utcnow

app = typer.Typer(
    no_args_is_help=True,
    help="Deployments: list, inspect, and steer their rollouts (pause, resume, promote, "
    "rollback, switch).",
)
NameArgument = Annotated[str, typer.Argument(help="Deployment name (see deployments list).")]
ReasonOption = Annotated[str, typer.Option(help="Why: kept in the deployment's history.")]


def apply(
    files: Annotated[
        list[Path],
        typer.Option(
            "--filename",
            "-f",
            help="YAML file of ModelDeployment and Experiment documents (several allowed; - "
            "reads standard input). Repeat for more files.",
        ),
    ],
) -> None:
    """Create or update deployments and experiments from YAML (`kind: ModelDeployment`,
    `kind: Experiment`); deployments first, so an experiment may name one in the same file."""
    validators = {
        rollout_spec.KIND: rollout_spec.validate,
        experiment_spec.KIND: experiment_spec.validate,
    }
    specs: list[Named] = []
    with output.reporting_errors():
        for file in files:
            specs.extend(documents.load_yaml(_read(file), validators, source=str(file)))
    with opened_registry() as registry, output.reporting_errors():
        store = DeploymentStore(registry)
        for spec in specs:
            if isinstance(spec, DeploymentSpec):
                deployment, changed = store.apply(spec)
                _applied("deployment", spec.name, changed, deployment.revision)
        experiments = ExperimentStore(registry)
        for spec in specs:
            if isinstance(spec, ExperimentSpec):
                experiment, changed = experiments.apply(spec)
                _applied("experiment", spec.name, changed, experiment.revision)


def _applied(kind: str, name: str, changed: bool, revision: int) -> None:
    verb = "created" if changed and revision == 1 else "configured"
    output.console.print(f"{kind}/{name} {verb if changed else 'unchanged'}")


@app.command("list")
def deployments_list(as_json: JsonFlag = False) -> None:
    """Deployments with their strategy, phase and traffic split."""
    with opened_registry() as registry:
        listed = DeploymentStore(registry).deployments()
    if as_json:
        output.emit_json({"deployments": [d.to_dict() for d in listed]})
        return
    output.table(
        "Deployments",
        ["name", "strategy", "phase", "split", "revision"],
        [
            (d.name, d.spec.strategy.value, d.state.phase.value, _split(d), d.revision)
            for d in listed
        ],
    )


@app.command("get")
def deployments_get(
    name: NameArgument,
    output_format: output.ResourceFormat = "yaml",
) -> None:
    """A deployment's spec (as YAML to edit and apply again) or everything as JSON."""
    with opened_registry() as registry:
        deployment = DeploymentStore(registry).get(name)
    output.emit_resource(deployment.spec.to_document(), deployment.to_dict(), output_format)


@app.command("status")
def deployments_status(name: NameArgument, as_json: JsonFlag = False) -> None:
    """What every live replica serves, and each slot's figures over the gate window."""
    with opened_registry() as registry:
        status = describe(
            DeploymentStore(registry).get(name), Telemetry(registry.database, "cli"), utcnow()
        )
    if as_json:
        output.emit_json(status)
        return
    state = status["state"]
    converged = "yes" if status["converged"] else "no"
    output.console.print(
        f"{name}: {state['phase']} (revision {status['revision']}, epoch {state['epoch']}, "
        f"replicas converged: {converged})"
    )
    if state["reason"]:
        output.console.print(f"  last change: {state['reason']}", markup=False)
    output.table(
        "Replicas",
        ["replica", "revision", "slot", "model", "version", "weight", "state"],
        [
            (
                r["replica"],
                r["revision"],
                s["slot"],
                s["address"],
                s["version"],
                s["weight"],
                s["state"],
            )
            for r in status["replicas"]
            for s in r["slots"]
        ],
    )
    output.table(
        "Figures over the gate window (all replicas)",
        ["slot", "requests", "error rate", "p99 ms", "disagreement", "mean |diff|"],
        [
            (
                slot,
                f["requests"],
                _percent(f["error_rate"]),
                _number(f["p99_ms"]),
                _percent(f["disagreement_rate"]),
                _number(f["mean_abs_diff"]),
            )
            for slot, f in status["figures"].items()
        ],
    )


@app.command("history")
def deployments_history(
    name: NameArgument,
    limit: Annotated[int, typer.Option(help="Newest entries to show.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Every transition with its actor and reason, newest first."""
    with opened_registry() as registry:
        events = DeploymentStore(registry).history(name, limit)
    if as_json:
        output.emit_json({"events": [e.to_dict() for e in events]})
        return
    output.table(
        f"History of {name}",
        ["at", "revision", "action", "actor", "phase", "reason"],
        [
            (
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.revision,
                e.action,
                e.actor,
                e.state["phase"],
                e.reason,
            )
            for e in events
        ],
    )


@app.command("delete")
def deployments_delete(name: NameArgument) -> None:
    """Remove a deployment (its history stays); replicas stop serving it."""
    with opened_registry() as registry:
        DeploymentStore(registry).delete(name)
    output.console.print(f"deployment/{name} deleted")


def _operate(action: Action, name: str, reason: str) -> None:
    with opened_registry() as registry:
        deployment = DeploymentStore(registry).transition(
            name,
            action,
            BY_OPERATOR[action].change,
            reason=reason or f"{action.value} by operator",
        )
    assert deployment is not None
    output.console.print(f"deployment/{name} {deployment.state.phase.value}: {_split(deployment)}")


def _command(action: Action) -> None:
    def command(name: NameArgument, reason: ReasonOption = "") -> None:
        _operate(action, name, reason)

    command.__doc__ = BY_OPERATOR[action].summary
    app.command(action.value)(command)


for _action in BY_OPERATOR:
    _command(_action)


def rollback(name: NameArgument, reason: ReasonOption = "") -> None:
    """Send all of a deployment's traffic back to its primary now."""
    _operate(Action.ROLLBACK, name, reason)


def _read(file: Path) -> str:
    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _split(deployment: Deployment) -> str:
    return ", ".join(f"{slot} {weight:g} %" for slot, weight in deployment.state.weights.items())


def _percent(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"
