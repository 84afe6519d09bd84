"""From stored exposures and events to one value per enrolled unit and metric.

The database does the joining and summing: for each exposed unit, its events of the metric
at or after its first exposure (matched by unit id, or by request id when each request is its
own unit). A binary metric is 1 for a unit with any event above 0, else 0; a numeric one is
the sum of its values (0 without events), or their mean (units without events left out).
A covariate is the mean of the unit's covariate events, whenever measured; a unit without one
gets the mean of those that have one, which leaves CUPED's adjustment of it at nothing.

A feedback metric scores the answers the unit's variant gave it since exposure (from the
prediction log) against their ground truth (``/v1/feedback``): ``accuracy`` is 1 for a label
equal to its truth, ``absolute_error`` the distance of a prediction from it; a unit's value is
the mean over its labelled answers, and units without any are left out.

Arrays keep the units in the order they were first exposed: the mSPRT pairs observations in
arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import ColumnElement, Row, Select, Text, and_, case, cast, func, select
from sqlalchemy.orm import Session

from modelport.experiments.spec import MetricSpec, MetricType, Source
from modelport.store.tables import ExposureRow, FeedbackRow, MetricEventRow, PredictionRow
from modelport.store.unit_of_work import Database


@dataclass(frozen=True, slots=True)
class Values:
    """One metric's per-unit values of one variant, and their covariates (CUPED)."""

    y: np.ndarray
    x: np.ndarray | None = None


@dataclass(slots=True)
class Observed:
    units: dict[str, int]
    """Enrolled units per variant."""
    units_by_step: dict[int, dict[str, int]]
    metrics: dict[str, dict[str, Values]] = field(default_factory=dict)
    """Metric name → variant → values."""


class Outcomes:
    def __init__(self, database: Database) -> None:
        self._db = database

    def observed(
        self,
        experiment: str,
        metrics: tuple[MetricSpec, ...],
        *,
        per_request: bool,
        deployment: str = "",
    ) -> Observed:
        with self._db.read() as s:
            counts = s.execute(
                select(ExposureRow.variant, ExposureRow.step, func.count())
                .where(ExposureRow.experiment == experiment)
                .group_by(ExposureRow.variant, ExposureRow.step)
            ).all()
            units: dict[str, int] = {}
            by_step: dict[int, dict[str, int]] = {}
            for variant, step, count in counts:
                units[variant] = units.get(variant, 0) + count
                by_step.setdefault(step, {})[variant] = count
            observed = Observed(units, by_step)
            for metric in metrics:
                if metric.source is Source.FEEDBACK:
                    query = _answers(experiment, deployment, per_request)
                    scored = _scored(s.execute(query).all(), metric.name)
                    observed.metrics[metric.name] = scored
                else:
                    values = self._values(s, experiment, metric, per_request)
                    observed.metrics[metric.name] = values
        return observed

    def _values(
        self, s: Session, experiment: str, metric: MetricSpec, per_request: bool
    ) -> dict[str, Values]:
        rows = s.execute(_per_unit(experiment, metric, per_request)).all()
        covariates: dict[str, float] = {}
        if metric.covariate is not None:
            query = _covariates(experiment, metric.covariate, per_request)
            covariates = {unit: float(x) for unit, x in s.execute(query).all()}
        grouped: dict[str, tuple[list[float], list[float]]] = {}
        for variant, unit, value in rows:
            if value is None:  # a mean over no events
                continue
            ys, xs = grouped.setdefault(variant, ([], []))
            ys.append(float(value))
            xs.append(covariates.get(unit, np.nan))
        if metric.covariate is None:
            return {variant: Values(np.asarray(ys)) for variant, (ys, _) in grouped.items()}
        known = [x for _, xs in grouped.values() for x in xs if not np.isnan(x)]
        fill = float(np.mean(known)) if known else 0.0
        return {
            variant: Values(np.asarray(ys), np.nan_to_num(np.asarray(xs), nan=fill))
            for variant, (ys, xs) in grouped.items()
        }


def _answers(
    experiment: str, deployment: str, per_request: bool
) -> Select[str, str, str | None, int, Any]:
    """Every labelled answer a unit's variant gave it since its exposure, in exposure order."""
    logged = PredictionRow.request_id if per_request else PredictionRow.unit_id
    return (
        select(
            ExposureRow.variant,
            ExposureRow.unit_id,
            cast(PredictionRow.outputs, Text),
            FeedbackRow.row,
            FeedbackRow.truth,
        )
        .join(
            PredictionRow,
            and_(
                logged == ExposureRow.unit_id,
                PredictionRow.deployment == deployment,
                PredictionRow.slot == ExposureRow.variant,
                PredictionRow.shadow.is_(False),
                PredictionRow.status == 200,
                PredictionRow.at >= ExposureRow.at,
            ),
        )
        .join(FeedbackRow, FeedbackRow.request_id == PredictionRow.request_id)
        .where(ExposureRow.experiment == experiment)
        .order_by(ExposureRow.at, ExposureRow.unit_id)
    )


def _scored(rows: Sequence[Row[str, str, str | None, int, Any]], metric: str) -> dict[str, Values]:
    per_unit: dict[tuple[str, str], list[float]] = {}
    for variant, unit, outputs, row, truth in rows:
        score = _score(outputs, row, truth, metric)
        if score is not None:
            per_unit.setdefault((variant, unit), []).append(score)
    grouped: dict[str, list[float]] = {}
    for (variant, _), scores in per_unit.items():
        grouped.setdefault(variant, []).append(sum(scores) / len(scores))
    return {variant: Values(np.asarray(ys)) for variant, ys in grouped.items()}


def _score(outputs: str | None, row: int, truth: Any, metric: str) -> float | None:
    """One answer against its truth; None when it cannot be scored that way."""
    if outputs is None:
        return None
    answer = orjson.loads(outputs)
    if metric == "accuracy" and row < len(answer.get("label", ())):
        return float(answer["label"][row] == truth)
    if metric == "absolute_error" and row < len(answer.get("prediction", ())):
        predicted = answer["prediction"][row]
        numeric = (int, float)
        if isinstance(predicted, numeric) and isinstance(truth, numeric):
            return abs(float(predicted) - float(truth))
    return None


def _joined(per_request: bool, metric: str, since_exposure: bool) -> ColumnElement[bool]:
    key = MetricEventRow.request_id if per_request else MetricEventRow.unit_id
    condition = and_(MetricEventRow.metric == metric, key == ExposureRow.unit_id)
    return and_(condition, MetricEventRow.at >= ExposureRow.at) if since_exposure else condition


def _per_unit(
    experiment: str, metric: MetricSpec, per_request: bool
) -> Select[str, str, float | None]:
    value = MetricEventRow.value
    aggregate: ColumnElement[float | None]
    if metric.type is MetricType.BINARY:
        aggregate = func.coalesce(func.max(case((value > 0, 1.0), else_=0.0)), 0.0)
    elif metric.aggregate == "mean":
        aggregate = func.avg(value)
    else:
        aggregate = func.coalesce(func.sum(value), 0.0)
    return (
        select(ExposureRow.variant, ExposureRow.unit_id, aggregate)
        .outerjoin(MetricEventRow, _joined(per_request, metric.name, since_exposure=True))
        .where(ExposureRow.experiment == experiment)
        .group_by(ExposureRow.variant, ExposureRow.unit_id, ExposureRow.at)
        .order_by(ExposureRow.at, ExposureRow.unit_id)
    )


def _covariates(experiment: str, covariate: str, per_request: bool) -> Select[str, float]:
    return (
        select(ExposureRow.unit_id, func.avg(MetricEventRow.value))
        .join(MetricEventRow, _joined(per_request, covariate, since_exposure=False))
        .where(ExposureRow.experiment == experiment)
        .group_by(ExposureRow.unit_id)
    )
