"""`modelport experiments …`: A/B experiments on deployments, on the registry database (like
``deployments``; ``apply -f`` creates them). ``plan`` says how many units an experiment needs
before it starts, so that its end is decided by the plan and not by whoever looks at the
dashboard first; ``report`` reads the statistics at any time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry
from modelport.errors import InvalidInputError
from modelport.experiments.store import ExperimentStore

if TYPE_CHECKING:  # scipy behind it: loaded by this command only
    from modelport.experiments.analysis import SampleSize

app = typer.Typer(
    no_args_is_help=True,
    help="A/B experiments on deployments: plan, start, stop, promote a winner, report.",
)


@app.command()
def plan(
    mde: Annotated[
        float,
        typer.Option(
            help="Minimum detectable effect, absolute: 0.01 is one percentage point of a rate; "
            "a mean's MDE is in the metric's units."
        ),
    ],
    baseline: Annotated[
        float | None,
        typer.Option(help="The control's rate, for a proportion metric (between 0 and 1)."),
    ] = None,
    sd: Annotated[
        float | None, typer.Option(help="The metric's standard deviation, for a mean metric.")
    ] = None,
    power: Annotated[
        float, typer.Option(help="Chance of detecting an effect the size of the MDE.")
    ] = 0.8,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    as_json: JsonFlag = False,
) -> None:
    """Units per group (and in total, two equal groups) for a two-sided test to detect the MDE:
    give --baseline for a conversion rate or --sd for a mean (normal and t-test sizes)."""
    from modelport.experiments.analysis import means_sample_size, proportions_sample_size

    with output.reporting_errors():
        if (baseline is None) == (sd is None):
            raise InvalidInputError(
                "give --baseline (a rate) or --sd (a mean), exactly one of them"
            )
        try:
            if baseline is not None:
                sizes = [proportions_sample_size(baseline, mde, power=power, alpha=alpha)]
            else:
                assert sd is not None
                sizes = [
                    means_sample_size(sd, mde, power=power, alpha=alpha, method=method)
                    for method in ("normal", "t")
                ]
        except InvalidInputError as exc:
            raise _as_option(exc) from exc
    recommended = sizes[-1]  # the t-test's for a mean: the test that will be run
    if as_json:
        output.emit_json(
            {
                "metric": str(recommended.metric),
                "baseline": baseline,
                "sd": sd,
                "mde": mde,
                "alpha": alpha,
                "power": power,
                "per_group": recommended.per_group,
                "total": recommended.total,
                "sizes": [size.to_dict() for size in sizes],
            }
        )
        return
    _table(sizes, baseline, sd, mde)


def _as_option(error: InvalidInputError) -> InvalidInputError:
    """The library names its arguments (``baseline must be ...``); a user typed ``--baseline``."""
    if error.pointer is None:
        return error
    for name in ("baseline + mde", error.pointer.lstrip("/")):
        if error.detail.startswith(f"{name} "):
            option = " + ".join(f"--{part}" for part in name.split(" + "))
            detail = option + error.detail[len(name) :]
            return InvalidInputError(detail, pointer=error.pointer)
    return error


def _table(sizes: list[SampleSize], baseline: float | None, sd: float | None, mde: float) -> None:
    first = sizes[0]
    if baseline is not None:
        what, effect = f"rate {baseline:g} -> {baseline + mde:g}", "Cohen's h"
    else:
        what, effect = f"mean {mde:+g} (sd {sd:g})", "Cohen's d"
    output.table(
        f"Sample size: {what}, alpha {first.alpha:g}, power {first.power:g}",
        ["method", effect, "per group", "total", "achieved power"],
        [
            [
                "t-test" if size.method == "t" else "normal",
                f"{size.effect_size:.4f}",
                f"{size.per_group:,}",
                f"{size.total:,}",
                f"{size.achieved_power:.4f}",
            ]
            for size in sizes
        ],
    )


NameArgument = Annotated[str, typer.Argument(help="Experiment name (see experiments list).")]
ReasonOption = Annotated[str, typer.Option(help="Why: kept in the experiment's history.")]


@app.command("list")
def experiments_list(
    deployment: Annotated[
        str | None, typer.Option(help="Only the experiments of this deployment.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Experiments with their deployment, phase and enrolled share."""
    with opened_registry() as registry:
        listed = ExperimentStore(registry).experiments(deployment)
    if as_json:
        output.emit_json({"experiments": [e.to_dict() for e in listed]})
        return
    output.table(
        "Experiments",
        ["name", "deployment", "phase", "share", "primary metric", "revision"],
        [
            (
                e.name,
                e.spec.deployment,
                e.state.phase.value,
                f"{e.share:g} %",
                e.spec.primary_metric.name,
                e.revision,
            )
            for e in listed
        ],
    )


@app.command("get")
def experiments_get(
    name: NameArgument,
    output_format: output.ResourceFormat = "yaml",
) -> None:
    """An experiment's spec (as YAML to edit and apply again) or everything as JSON."""
    with opened_registry() as registry:
        experiment = ExperimentStore(registry).get(name)
    output.emit_resource(experiment.spec.to_document(), experiment.to_dict(), output_format)


@app.command("start")
def experiments_start(name: NameArgument, reason: ReasonOption = "") -> None:
    """Enrol the first ramp step's share of units; the controller ramps from there."""
    with opened_registry() as registry:
        experiment = ExperimentStore(registry).start(name, reason=reason)
    output.console.print(f"experiment/{name} running: {experiment.share:g} % of units enrolled")


@app.command("stop")
def experiments_stop(name: NameArgument, reason: ReasonOption = "") -> None:
    """End the experiment: all traffic back on the control."""
    with opened_registry() as registry:
        ExperimentStore(registry).stop(name, reason=reason or "stopped by operator")
    output.console.print(f"experiment/{name} stopped: all traffic on the control")


@app.command("promote")
def experiments_promote(
    name: NameArgument,
    variant: Annotated[str, typer.Argument(help="The winning slot.")],
    alias: Annotated[
        str | None,
        typer.Option(help="The alias to move to the winner's version; default: the control's."),
    ] = None,
    reason: ReasonOption = "",
) -> None:
    """Make VARIANT the winner: the control's alias moves to it and it takes all traffic."""
    with opened_registry() as registry:
        experiment = ExperimentStore(registry).promote(name, variant, alias=alias, reason=reason)
    output.console.print(f"experiment/{name} concluded: {experiment.state.reason}", markup=False)


@app.command("report")
def experiments_report(
    name: NameArgument,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for a CI of each difference; 0: none.")
    ] = 0,
    seed: Annotated[int, typer.Option(min=0, help="The bootstrap's seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Every metric of every variant against the control, the SRM check and the guardrails."""
    from modelport.experiments.report import Bootstrap, Reports  # scipy: this command only

    with opened_registry() as registry:
        experiment = ExperimentStore(registry).get(name)
        resampling = Bootstrap(bootstrap, seed) if bootstrap else None
        report = Reports(registry).report(experiment, resampling).to_dict()
    if as_json:
        output.emit_json(report)
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    planned = report["sample_size"]
    progress = (
        "" if planned is None else f", {report['sample_progress']:.0%} of {planned} per variant"
    )
    output.console.print(
        f"{report['experiment']} on {report['deployment']}: {report['phase']}, "
        f"{report['share']:g} % of units enrolled{progress}",
        markup=False,
    )
    srm = report["srm"]
    if srm is not None:
        verdict = "MISMATCH: do not trust the figures" if srm["mismatch"] else "ok"
        output.console.print(f"sample ratio: p = {srm['p_value']:.4g} ({verdict})", markup=False)
    output.table(
        "Variants",
        ["variant", "weight", "units"],
        [(v["name"], f"{v['weight']:g} %", v["units"]) for v in report["variants"]],
    )
    rows = [(m, v) for m in report["metrics"] for v in m["variants"]]
    output.table(
        f"Against {report['control']} ({report['correction']}-corrected, alpha {report['alpha']})",
        ["metric", "variant", "means", "difference [CI]", "lift [CI]", "p", "p valid", "verdict"],
        [
            (
                m["metric"] + (" (guardrail)" if m["role"] == "guardrail" else ""),
                v["variant"],
                _means(m, v),
                _interval(v["fixed_horizon"], "estimate", "ci_low", "ci_high"),
                _interval(v["relative_lift"], "estimate", "low", "high", percent=True),
                _number((v["fixed_horizon"] or {}).get("p_value")),
                _number(v["p_adjusted"]),
                v["verdict"],
            )
            for m, v in rows
        ],
    )
    output.console.print(
        "p: fixed-horizon test, valid read once at the planned size; p valid: always-valid "
        "(mSPRT), corrected, what the verdicts use",
        markup=False,
    )
    for m, v in rows:
        if v["problem"] is not None:
            output.console.print(f"{m['metric']}, {v['variant']}: {v['problem']}", markup=False)
    for breach in report["guardrail_breaches"]:
        output.console.print(f"guardrail breached: {breach}", markup=False)


def _means(metric: dict[str, Any], variant: dict[str, Any]) -> str:
    """The control's mean and the variant's."""
    fixed = variant["fixed_horizon"] or {}
    return f"{_number(metric['control_mean'])} / {_number(fixed.get('mean_b'))}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _interval(
    figures: dict[str, Any] | None, estimate: str, low: str, high: str, *, percent: bool = False
) -> str:
    if figures is None or figures.get(estimate) is None:
        return "-"
    shown = (lambda x: "?" if x is None else f"{x:+.1%}") if percent else _signed
    return f"{shown(figures[estimate])} [{shown(figures[low])}, {shown(figures[high])}]"


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3g}"


@app.command("history")
def experiments_history(
    name: NameArgument,
    limit: Annotated[int, typer.Option(help="Newest entries to show.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Every change with its actor and reason, newest first."""
    with opened_registry() as registry:
        events = ExperimentStore(registry).history(name, limit)
    if as_json:
        output.emit_json({"events": [e.to_dict() for e in events]})
        return
    output.table(
        f"History of {name}",
        ["at", "action", "actor", "phase", "reason"],
        [
            (e.at.strftime("%Y-%m-%d %H:%M:%S"), e.action, e.actor, e.state["phase"], e.reason)
            for e in events
        ],
    )


@app.command("delete")
def experiments_delete(name: NameArgument) -> None:
    """Forget an experiment that does not run, with its exposures (its history stays)."""
    with opened_registry() as registry:
        ExperimentStore(registry).delete(name)
    output.console.print(f"experiment/{name} deleted")
