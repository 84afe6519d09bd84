"""An experiment's report: for every metric and every variant against the control, the
estimate, its intervals, the p-values and the verdict; the SRM check; the guardrails.

Two p-values are given per comparison. The fixed-horizon one (z-test or Welch, CUPED-adjusted
where the metric names a covariate) is valid when read once, at the planned sample size. The
always-valid one (mSPRT) stays valid however often the report is read, so the verdicts, the
multiple-comparison correction (Holm or Benjamini-Hochberg across every metric and variant)
and the guardrails use it: a dashboard refreshed every minute does not inflate false
positives.

A guardrail is breached when a variant is significantly worse than the control on it (after
correction) by more than its tolerance (relative to the control's mean); the controller
then stops the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError
from modelport.experiments.analysis.bootstrap import bootstrap_difference
from modelport.experiments.analysis.comparisons import Comparison, proportions_test, welch_test
from modelport.experiments.analysis.corrections import benjamini_hochberg, holm
from modelport.experiments.analysis.cuped import cuped
from modelport.experiments.analysis.interval import Interval
from modelport.experiments.analysis.lift import proportions_lift, relative_lift
from modelport.experiments.analysis.sequential import SequentialResult, msprt
from modelport.experiments.analysis.srm import SrmResult, sample_ratio_mismatch
from modelport.experiments.outcomes import Observed, Outcomes, Values
from modelport.experiments.spec import Correction, ExperimentSpec, MetricSpec, MetricType, Unit
from modelport.experiments.store import Experiment, control_of, variants
from modelport.registry import Registry
from modelport.rollout.store import DeploymentStore

MAX_BOOTSTRAP_DRAWS = 2_000_000_000
"""Resamples times units a report may bootstrap: beyond it (minutes of CPU) it says so."""
DEFAULT_EFFECT_SD = 0.1
"""Without an ``mde``, the mSPRT mixes over effects of about 0.1 standard deviation of the
control's values (τ² = 0.01 σ²): a scale-free default, in the range experiments aim for."""


@dataclass(frozen=True, slots=True)
class Bootstrap:
    resamples: int
    seed: int


@dataclass(slots=True)
class VariantResult:
    """One variant against the control on one metric."""

    variant: str
    fixed: Comparison | None = None
    lift: Interval | None = None
    sequential: SequentialResult | None = None
    theta: float | None = None
    variance_reduction: float | None = None
    bootstrap: Interval | None = None
    p_adjusted: float | None = None
    significant: bool = False
    verdict: str = "not enough data"
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        cuped = (
            None
            if self.theta is None
            else {"theta": self.theta, "variance_reduction": self.variance_reduction}
        )
        return {
            "variant": self.variant,
            "verdict": self.verdict,
            "significant": self.significant,
            "p_adjusted": self.p_adjusted,
            "fixed_horizon": None if self.fixed is None else self.fixed.to_dict(),
            "relative_lift": None if self.lift is None else self.lift.to_dict(),
            "sequential": None if self.sequential is None else self.sequential.to_dict(),
            "cuped": cuped,
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
            "problem": self.problem,
        }


@dataclass(slots=True)
class MetricResult:
    metric: MetricSpec
    role: str
    """``primary`` or ``guardrail``."""
    control_mean: float | None
    variants: list[VariantResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name,
            "role": self.role,
            "type": self.metric.type.value,
            "control_mean": self.control_mean,
            "variants": [v.to_dict() for v in self.variants],
        }


@dataclass(frozen=True, slots=True)
class Breach:
    metric: str
    variant: str
    lift: float | None

    def __str__(self) -> str:
        size = "" if self.lift is None else f" ({self.lift:+.1%})"
        return f"{self.variant} is worse on guardrail {self.metric}{size}"


@dataclass(slots=True)
class Report:
    experiment: Experiment
    control: str
    weights: dict[str, float]
    units: dict[str, int]
    units_by_step: dict[int, dict[str, int]]
    srm: SrmResult | None
    metrics: list[MetricResult]
    breaches: list[Breach]

    @property
    def sample_progress(self) -> float | None:
        """The smallest variant's units over the planned sample size per variant."""
        planned = self.experiment.spec.sample_size
        if planned is None:
            return None
        return min(self.units.get(v, 0) for v in self.weights) / planned

    def to_dict(self) -> dict[str, Any]:
        spec = self.experiment.spec
        return {
            "experiment": self.experiment.name,
            "deployment": spec.deployment,
            "phase": self.experiment.state.phase.value,
            "share": self.experiment.share,
            "unit": spec.unit.value,
            "control": self.control,
            "alpha": spec.alpha,
            "correction": spec.correction.value,
            "variants": [
                {"name": name, "weight": weight, "units": self.units.get(name, 0)}
                for name, weight in self.weights.items()
            ],
            "units_by_step": {str(k): v for k, v in sorted(self.units_by_step.items())},
            "sample_size": spec.sample_size,
            "sample_progress": self.sample_progress,
            "srm": None if self.srm is None else self.srm.to_dict(),
            "metrics": [m.to_dict() for m in self.metrics],
            "guardrail_breaches": [str(b) for b in self.breaches],
        }


class Reports:
    def __init__(self, registry: Registry) -> None:
        self._deployments = DeploymentStore(registry)
        self._outcomes = Outcomes(registry.database)

    def report(self, experiment: Experiment, bootstrap: Bootstrap | None = None) -> Report:
        spec, state = experiment.spec, experiment.state
        if state.control is not None and state.weights is not None:
            control, weights = state.control, state.weights
        else:  # a draft: the deployment as it is now
            deployment = self._deployments.get(spec.deployment).spec
            control = control_of(deployment, spec)
            weights = {name: deployment.slot(name).weight for name in variants(deployment, spec)}
        observed = self._outcomes.observed(
            experiment.name,
            spec.metrics,
            per_request=spec.unit is Unit.REQUEST,
            deployment=spec.deployment,
        )
        return analyse(experiment, control, weights, observed, bootstrap)


def analyse(
    experiment: Experiment,
    control: str,
    weights: dict[str, float],
    observed: Observed,
    bootstrap: Bootstrap | None = None,
) -> Report:
    """The report from what was observed: pure, given the stored figures."""
    spec = experiment.spec
    counts = [observed.units.get(name, 0) for name in weights]
    srm = sample_ratio_mismatch(counts, list(weights.values())) if sum(counts) else None
    treatments = [name for name in weights if name != control]
    metrics = [
        _metric(spec, metric, role, control, treatments, observed.metrics[metric.name], bootstrap)
        for metric, role in (
            (spec.primary_metric, "primary"),
            *((g, "guardrail") for g in spec.guardrails),
        )
    ]
    _correct(spec, metrics)
    breaches = [
        Breach(m.metric.name, v.variant, v.lift.estimate if v.lift else None)
        for m in metrics
        if m.role == "guardrail"
        for v in m.variants
        if v.verdict == "worse" and _beyond_tolerance(v, m.metric.tolerance)
    ]
    return Report(
        experiment,
        control,
        weights,
        observed.units,
        observed.units_by_step,
        srm,
        metrics,
        breaches,
    )


def _metric(
    spec: ExperimentSpec,
    metric: MetricSpec,
    role: str,
    control: str,
    treatments: list[str],
    values: dict[str, Values],
    bootstrap: Bootstrap | None,
) -> MetricResult:
    empty = Values(np.empty(0))
    base = values.get(control, empty)
    result = MetricResult(metric, role, float(base.y.mean()) if base.y.size else None)
    for name in treatments:
        variant = VariantResult(name)
        try:
            _compare(spec, metric, base, values.get(name, empty), variant, bootstrap)
        except InvalidInputError as exc:
            variant.problem = exc.detail
        result.variants.append(variant)
    return result


def _compare(
    spec: ExperimentSpec,
    metric: MetricSpec,
    a: Values,
    b: Values,
    result: VariantResult,
    bootstrap: Bootstrap | None,
) -> None:
    alpha = spec.alpha
    if metric.type is MetricType.BINARY:
        successes_a, successes_b = int(a.y.sum()), int(b.y.sum())
        result.fixed = proportions_test(successes_a, a.y.size, successes_b, b.y.size, alpha=alpha)
        result.lift = proportions_lift(successes_a, a.y.size, successes_b, b.y.size, alpha=alpha)
    elif a.x is not None and b.x is not None:
        adjusted = cuped(a.y, b.y, a.x, b.x, alpha=alpha)
        result.fixed, result.theta = adjusted.comparison, adjusted.theta
        result.variance_reduction = adjusted.variance_reduction
        result.lift = relative_lift(a.y, b.y, alpha=alpha)
    else:
        result.fixed = welch_test(a.y, b.y, alpha=alpha)
        result.lift = relative_lift(a.y, b.y, alpha=alpha)
    result.sequential = msprt(a.y, b.y, tau2=_mixing_variance(metric, a.y), alpha=alpha)
    if bootstrap is not None:
        if bootstrap.resamples * (a.y.size + b.y.size) > MAX_BOOTSTRAP_DRAWS:
            raise InvalidInputError(
                f"{bootstrap.resamples} bootstrap resamples of {a.y.size + b.y.size} units "
                f"exceed {MAX_BOOTSTRAP_DRAWS:,} draws: ask for fewer resamples"
            )
        result.bootstrap = bootstrap_difference(
            a.y, b.y, seed=bootstrap.seed, resamples=bootstrap.resamples, alpha=alpha
        )


def _mixing_variance(metric: MetricSpec, control: np.ndarray) -> float:
    if metric.mde is not None:
        return metric.mde**2
    spread = float(control.var(ddof=1)) if control.size > 1 else 0.0
    return (DEFAULT_EFFECT_SD**2) * spread if spread > 0 else 1e-12


def _correct(spec: ExperimentSpec, metrics: list[MetricResult]) -> None:
    """Adjust the always-valid p-values of every comparison together, then give verdicts."""
    tested = [v for m in metrics for v in m.variants if v.sequential is not None]
    if not tested:
        return
    raw = np.array([v.sequential.p_value for v in tested if v.sequential is not None])
    adjust = holm if spec.correction is Correction.HOLM else benjamini_hochberg
    for variant, p in zip(tested, adjust(raw), strict=True):
        variant.p_adjusted = float(p)
        variant.significant = bool(p < spec.alpha)
    for metric in metrics:
        for variant in metric.variants:
            variant.verdict = _verdict(metric.metric, variant)


def _verdict(metric: MetricSpec, variant: VariantResult) -> str:
    if variant.sequential is None:
        return "not enough data"
    if not variant.significant:
        return "no difference yet"
    higher = variant.sequential.estimate > 0
    return "better" if higher == metric.higher_is_better else "worse"


def _beyond_tolerance(variant: VariantResult, tolerance: float) -> bool:
    lift = None if variant.lift is None else variant.lift.estimate
    if lift is None or not np.isfinite(lift):
        return True
    return abs(lift) > tolerance
