"""`modelport experiments plan`: how many units an A/B experiment needs before it starts, so
that its end is decided by the plan and not by whoever looks at the dashboard first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.errors import InvalidInputError

if TYPE_CHECKING:  # scipy behind it: loaded by this command only
    from modelport.experiments.analysis import SampleSize

app = typer.Typer(
    no_args_is_help=True, help="A/B experiments on deployments: plan their sample size."
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
