"""The Experiment resource: an A/B test run on a deployment's traffic split, read from YAML
(``modelport apply -f``, beside ModelDeployments) or from an HTTP body.

Rules beyond the shape:

* the variants are the serving slots of a ``direct`` deployment (checked when the experiment
  is applied, against the deployment as it is then); ``control`` names one of them;
* ``primaryMetric`` and ``guardrails`` name distinct metrics; ``aggregate`` and
  ``covariate`` suit numeric metrics only; ``tolerance`` suits guardrails only;
* a metric comes from reported events (``source: events``, then ``type`` is required) or
  from the model's feedback (``source: feedback``: ``accuracy`` or ``absolute_error`` of the
  variant's logged answers against their ground truth, a numeric mean per unit);
* the ramp steps rise and end with 100 (every unit enrolled).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from modelport import documents
from modelport.documents import (
    FieldPath,
    Label,
    Metadata,
    Problem,
    Seconds,
    Shape,
    shape_problem,
)

API_VERSION = "modelport/v1"
KIND = "Experiment"
DEFAULT_RAMP = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)


class Unit(StrEnum):
    """What is randomised: a user or a session (named by ``X-Unit-Id`` or the deployment's
    sticky field), or each request on its own."""

    USER = "user"
    SESSION = "session"
    REQUEST = "request"


class Source(StrEnum):
    EVENTS = "events"
    """Outcomes posted to ``/v1/events``."""
    FEEDBACK = "feedback"
    """The variant's logged answers scored against ground truth (``/v1/feedback``)."""


FEEDBACK_METRICS = {"accuracy": True, "absolute_error": False}
"""What feedback measures per answer, and whether higher is better."""


class MetricType(StrEnum):
    BINARY = "binary"
    """Per unit: 1 when any of its events after exposure has a value above 0, else 0."""
    NUMERIC = "numeric"
    """Per unit: the sum (or mean) of its events' values after exposure."""


class Correction(StrEnum):
    HOLM = "holm"
    BH = "bh"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    type: MetricType
    aggregate: Literal["sum", "mean"] = "sum"
    higher_is_better: bool = True
    covariate: str | None = None
    """A metric measured before the experiment, for CUPED (numeric metrics)."""
    tolerance: float = 0.0
    """Guardrails: the relative harm allowed before a significant one stops the experiment."""
    mde: float | None = None
    """The absolute effect the experiment is planned to detect; τ² = mde² for the mSPRT."""
    source: Source = Source.EVENTS

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "source": self.source.value}
        if self.source is Source.FEEDBACK:
            return document | ({} if self.mde is None else {"mde": self.mde})
        document["type"] = self.type.value
        document["better"] = "higher" if self.higher_is_better else "lower"
        if self.type is MetricType.NUMERIC:
            document["aggregate"] = self.aggregate
        if self.covariate is not None:
            document["covariate"] = self.covariate
        if self.mde is not None:
            document["mde"] = self.mde
        return document


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """A validated Experiment; build it with ``parse_document`` or ``load_yaml``."""

    name: str
    deployment: str
    control: str | None
    """The control slot; None: the deployment's primary."""
    unit: Unit
    primary_metric: MetricSpec
    guardrails: tuple[MetricSpec, ...]
    sample_size: int | None
    """Planned units per variant (``modelport experiments plan``)."""
    alpha: float
    correction: Correction
    ramp: tuple[float, ...]
    ramp_interval_s: float
    min_units: int
    """Units per variant a ramp step must enrol before the next one."""
    evaluation_interval_s: float
    labels: Mapping[str, str]

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        return (self.primary_metric, *self.guardrails)

    def to_document(self) -> dict[str, Any]:
        """The canonical document, defaults spelled out: ``parse_document`` of it is equal."""
        spec: dict[str, Any] = {"deployment": self.deployment}
        if self.control is not None:
            spec["control"] = self.control
        spec |= {
            "unit": self.unit.value,
            "primaryMetric": self.primary_metric.to_document(),
            "guardrails": [
                {**g.to_document(), "tolerance": _plain(g.tolerance)} for g in self.guardrails
            ],
            "alpha": self.alpha,
            "correction": self.correction.value,
            "ramp": {
                "steps": [_plain(step) for step in self.ramp],
                "interval": self.ramp_interval_s,
                "minUnits": self.min_units,
            },
            "evaluationInterval": self.evaluation_interval_s,
        }
        if self.sample_size is not None:
            spec["sampleSize"] = self.sample_size
        metadata = {"name": self.name, "labels": dict(self.labels)}
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _plain(value: float) -> float | int:
    return int(value) if value.is_integer() else value


_MetricName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,62}$")]


class _Metric(Shape):
    name: _MetricName
    source: Literal["events", "feedback"] = "events"
    type: Literal["binary", "numeric"] | None = None
    aggregate: Literal["sum", "mean"] | None = None
    better: Literal["higher", "lower"] | None = None
    covariate: _MetricName | None = None
    mde: Annotated[float, Field(gt=0)] | None = None


class _Guardrail(_Metric):
    tolerance: Annotated[float, Field(ge=0, le=10)] = 0.0


class _Ramp(Shape):
    steps: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: list(DEFAULT_RAMP), min_length=1, max_length=100
    )
    interval: Seconds = 3600.0
    min_units: Annotated[int, Field(ge=0)] = 100


class _Spec(Shape):
    deployment: Label
    control: Label | None = None
    unit: Literal["user", "session", "request"] = "user"
    primary_metric: _Metric
    guardrails: list[_Guardrail] = Field(default_factory=list, max_length=20)
    sample_size: Annotated[int, Field(ge=2)] | None = None
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    correction: Literal["holm", "bh"] = "holm"
    ramp: _Ramp = Field(default_factory=_Ramp)
    evaluation_interval: Seconds = 60.0


class Manifest(Shape):
    api_version: Literal["modelport/v1"]
    kind: Literal["Experiment"]
    metadata: Metadata
    spec: _Spec


def parse_document(document: object, *, source: str = "request") -> ExperimentSpec:
    """An experiment from a decoded JSON body; every problem becomes one ``FieldError``."""
    spec = documents.parse(document, validate, source=source)
    assert isinstance(spec, ExperimentSpec)
    return spec


def load_yaml(text: str, *, source: str = "experiment.yaml") -> list[ExperimentSpec]:
    specs = documents.load_yaml(text, {KIND: validate}, source=source)
    return [spec for spec in specs if isinstance(spec, ExperimentSpec)]


def validate(document: object) -> ExperimentSpec | list[Problem]:
    """The experiment, if the document is a valid one; otherwise every problem found."""
    try:
        shape = Manifest.model_validate(document)
    except PydanticValidationError as exc:
        return [shape_problem(error, Manifest) for error in exc.errors()]
    problems = [*_metric_problems(shape.spec), *_ramp_problems(shape.spec)]
    return problems or _build(shape)


def _metric_problems(spec: _Spec) -> Iterator[Problem]:
    seen = {spec.primary_metric.name}
    written: list[tuple[FieldPath, _Metric]] = [(("spec", "primaryMetric"), spec.primary_metric)]
    for i, guardrail in enumerate(spec.guardrails):
        path: FieldPath = ("spec", "guardrails", i)
        written.append((path, guardrail))
        if guardrail.name in seen:
            yield (*path, "name"), f"{guardrail.name!r} is measured already"
        seen.add(guardrail.name)
    for path, metric in written:
        if metric.source == "feedback":
            yield from _feedback_problems(path, metric)
            continue
        if metric.type is None:
            yield (*path, "type"), "required: binary or numeric"
        if metric.type == "binary":
            for key in ("aggregate", "covariate"):
                if getattr(metric, key) is not None:
                    yield (*path, key), "only a numeric metric takes this"
        if metric.covariate is not None and metric.covariate == metric.name:
            yield (*path, "covariate"), "must be another metric, measured before the experiment"


def _feedback_problems(path: FieldPath, metric: _Metric) -> Iterator[Problem]:
    if metric.name not in FEEDBACK_METRICS:
        known = " or ".join(FEEDBACK_METRICS)
        yield (*path, "name"), f"feedback measures {known}, not {metric.name!r}"
    for key in ("type", "aggregate", "better", "covariate"):
        if getattr(metric, key) is not None:
            yield (*path, key), "feedback metrics set this themselves; leave it out"


def _ramp_problems(spec: _Spec) -> Iterator[Problem]:
    steps = spec.ramp.steps
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            yield (
                ("spec", "ramp", "steps", i),
                f"must be above the step before it ({steps[i - 1]:g})",
            )
    if steps and steps[-1] != 100:
        yield ("spec", "ramp", "steps"), "must end with 100 (every unit enrolled)"


def _build(shape: Manifest) -> ExperimentSpec:
    spec = shape.spec
    return ExperimentSpec(
        name=shape.metadata.name,
        deployment=spec.deployment,
        control=spec.control,
        unit=Unit(spec.unit),
        primary_metric=_build_metric(spec.primary_metric),
        guardrails=tuple(_build_metric(g, g.tolerance) for g in spec.guardrails),
        sample_size=spec.sample_size,
        alpha=spec.alpha,
        correction=Correction(spec.correction),
        ramp=tuple(spec.ramp.steps),
        ramp_interval_s=spec.ramp.interval,
        min_units=spec.ramp.min_units,
        evaluation_interval_s=spec.evaluation_interval,
        labels=MappingProxyType(dict(shape.metadata.labels)),
    )


def _build_metric(metric: _Metric, tolerance: float = 0.0) -> MetricSpec:
    source = Source(metric.source)
    feedback = source is Source.FEEDBACK
    return MetricSpec(
        name=metric.name,
        type=MetricType(metric.type or "numeric"),
        aggregate="mean" if feedback else metric.aggregate or "sum",
        higher_is_better=(FEEDBACK_METRICS[metric.name] if feedback else metric.better != "lower"),
        covariate=metric.covariate,
        tolerance=tolerance,
        mde=metric.mde,
        source=source,
    )
