"""The release gate: may a candidate version replace production? Five checks, each passing,
failing or skipped with a reason, so that CI can stop a bad model before an alias moves.

1. ``integrity``: every artifact file matches its recorded SHA-256, and its flavor is here.
2. ``signature``: production's callers keep working (:func:`compatibility`).
3. ``quality``: on a labelled hold-out set, the candidate is not worse than production by
   more than ``max_quality_drop``: accuracy and F1 (absolute) for classifiers, R² (absolute)
   and RMSE (relative to production's) for regressors.
4. ``latency``: p99 of single-row predictions in this process, within ``latency_budget_ms``.
   A micro-benchmark, not a load test: it catches a model that got slower by an order of
   magnitude (a bigger forest, a forgotten pipeline step), not a 10% regression.
5. ``card``: the model card is filled in (description and the editable fields).

It lives in ``deploy``, not ``registry``, because the quality check needs
:mod:`modelport.monitoring.quality`, which the registry layer may not import.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError, ModelportError
from modelport.monitoring.quality import Quality, classification, regression
from modelport.registry import Registry, VersionRecord, warm_up
from modelport.registry.cards import CardFields
from modelport.runtimes.base import Runtime, call_model, close_runtime
from modelport.runtimes.batch import Batch
from modelport.runtimes.signature import STRING, Signature, SignatureKind, TensorSpec


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class GateReport:
    candidate: VersionRecord
    production: VersionRecord | None
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.status is not Status.FAIL for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": {"name": self.candidate.name, "version": self.candidate.version},
            "production": None
            if self.production is None
            else {"name": self.production.name, "version": self.production.version},
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class HoldOut:
    """Labelled rows: feature columns by name (in file order) and the true values."""

    columns: Mapping[str, np.ndarray]
    truth: np.ndarray


@dataclass(frozen=True, slots=True)
class GateOptions:
    max_quality_drop: float = 0.01
    latency_budget_ms: float = 50.0
    latency_runs: int = 200


@dataclass(frozen=True, slots=True)
class Compatibility:
    """What a signature change does to production's callers."""

    breaking: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    @property
    def compatible(self) -> bool:
        return not self.breaking


def compatibility(production: Signature, candidate: Signature) -> Compatibility:
    """Whether requests that production accepts, and answers its callers read, still work.

    Breaking: another kind of input (tensor / columns), an input added (every input is
    required) or removed (unknown inputs are refused), a dtype production's values cannot be
    cast to, another shape, missing values no longer allowed; an output removed, or changed
    in dtype or shape. An output added is fine: callers that do not ask for it never see it.
    """
    breaking: list[str] = []
    if production.kind is not candidate.kind:
        breaking.append(
            f"inputs change from {production.kind.value} to {candidate.kind.value}: "
            "callers would have to send another body"
        )
    old, new = _by_name(production.inputs), _by_name(candidate.inputs)
    breaking += [
        f"input {n!r} removed: callers send it and it would be refused" for n in old if n not in new
    ]
    breaking += [f"required input {n!r} added: callers do not send it" for n in new if n not in old]
    for name in old.keys() & new.keys():
        breaking += _input_change(old[name], new[name])
    old_out, new_out = _by_name(production.outputs), _by_name(candidate.outputs)
    notes: list[str] = []
    for name, spec in old_out.items():
        if name not in new_out:
            breaking.append(f"output {name!r} removed: callers read it")
        elif not _castable(new_out[name].dtype, spec.dtype):
            breaking.append(f"output {name!r} was {spec.dtype}, is {new_out[name].dtype}")
        elif _axes(spec) != _axes(new_out[name]):
            breaking.append(
                f"output {name!r} has shape {_shape(new_out[name])}, was {_shape(spec)}"
            )
    notes += [f"output {n!r} added" for n in new_out if n not in old_out]
    kind = breaking[:1] if production.kind is not candidate.kind else []
    return Compatibility((*kind, *sorted(breaking[len(kind) :])), tuple(notes))


def _input_change(old: TensorSpec, new: TensorSpec) -> list[str]:
    problems = []
    if not _castable(old.dtype, new.dtype):
        problems.append(
            f"input {old.name!r} was {old.dtype}, is {new.dtype}: "
            f"{old.dtype} values cannot be cast to {new.dtype}"
        )
    if _axes(old) != _axes(new):
        problems.append(f"input {old.name!r} takes shape {_shape(new)}, was {_shape(old)}")
    if old.nullable and not new.nullable:
        problems.append(f"input {old.name!r} no longer accepts missing values")
    return problems


def _by_name(specs: tuple[TensorSpec, ...]) -> dict[str, TensorSpec]:
    return {spec.name: spec for spec in specs}


def _castable(source: str, target: str) -> bool:
    """Whether values of dtype ``source`` convert to ``target`` without changing kind
    (float64 to float32 yes, int to float yes, float to int or number to string no)."""
    if STRING in (source, target):
        return source == target
    return bool(np.can_cast(np.dtype(source), np.dtype(target), casting="same_kind"))


def _axes(spec: TensorSpec) -> tuple[int, ...]:
    return spec.shape[1:]


def _shape(spec: TensorSpec) -> str:
    return "[" + ", ".join("N" if d == -1 else str(d) for d in spec.shape) + "]"


# -- the gate -------------------------------------------------------------------------------


def run_gate(
    registry: Registry,
    candidate: VersionRecord,
    production: VersionRecord | None,
    holdout: HoldOut | None,
    options: GateOptions,
) -> GateReport:
    """Run every check on ``candidate`` against ``production`` (None: nothing in production
    yet, so the comparisons are skipped)."""
    checks = [_integrity(registry, candidate)]
    verified = checks[0].status is Status.PASS
    checks.append(_signature(candidate, production))
    with ExitStack() as stack:
        loaded = _Loaded(registry, stack)
        checks.append(_quality_check(loaded, candidate, production, holdout, options, verified))
        checks.append(_latency_check(loaded, candidate, holdout, options, verified))
    checks.append(_card(candidate))
    return GateReport(candidate, production, tuple(checks))


def _integrity(registry: Registry, candidate: VersionRecord) -> Check:
    try:
        registry.verify(candidate)
    except ModelportError as exc:
        return Check("integrity", Status.FAIL, exc.detail)
    count = len(candidate.files)
    return Check("integrity", Status.PASS, f"{count} file(s) match their recorded SHA-256")


def _signature(candidate: VersionRecord, production: VersionRecord | None) -> Check:
    if production is None:
        return Check("signature", Status.SKIP, "nothing in production to compare with")
    result = compatibility(production.signature, candidate.signature)
    if not result.compatible:
        return Check("signature", Status.FAIL, "; ".join(result.breaking))
    extra = f" ({'; '.join(result.notes)})" if result.notes else ""
    return Check("signature", Status.PASS, f"compatible with {production.address}{extra}")


class _Loaded:
    """Runtimes loaded once for both the quality and latency checks, closed at the end."""

    def __init__(self, registry: Registry, stack: ExitStack) -> None:
        self.registry, self.stack = registry, stack
        self.runtimes: dict[str, tuple[Runtime, Batch | None]] = {}

    def get(self, record: VersionRecord) -> tuple[Runtime, Batch | None]:
        if record.address not in self.runtimes:
            runtime, example = self.registry.open(record)
            self.stack.callback(close_runtime, runtime)
            if example is not None:
                warm_up(record, runtime, example)
            self.runtimes[record.address] = (runtime, example)
        return self.runtimes[record.address]


def _quality_check(
    loaded: _Loaded,
    candidate: VersionRecord,
    production: VersionRecord | None,
    holdout: HoldOut | None,
    options: GateOptions,
    verified: bool,
) -> Check:
    if holdout is None:
        return Check("quality", Status.SKIP, "no hold-out data given (--data, --label)")
    if production is None:
        return Check("quality", Status.SKIP, "nothing in production to compare with")
    if not verified:
        return Check("quality", Status.SKIP, "the candidate's artifact did not verify")
    try:
        new = _scored(loaded, candidate, holdout)
        old = _scored(loaded, production, holdout)
    except ModelportError as exc:
        return Check("quality", Status.FAIL, exc.detail)
    if new.kind != old.kind:
        return Check(
            "quality", Status.FAIL, f"the candidate is a {new.kind} model, production {old.kind}"
        )
    worse, shown = _compared(new, old, options.max_quality_drop)
    rows = f"on {new.rows:,} hold-out rows"
    if worse:
        return Check("quality", Status.FAIL, f"worse than {production.address} {rows}: {worse}")
    return Check("quality", Status.PASS, f"{shown} {rows}")


def _scored(loaded: _Loaded, record: VersionRecord, holdout: HoldOut) -> Quality:
    runtime, _ = loaded.get(record)
    batch = _batch(record, holdout.columns)
    outputs = call_model(runtime, batch)
    try:
        if "label" in outputs:
            return classification(holdout.truth, np.asarray(outputs["label"]))
        if "prediction" in outputs:
            return regression(holdout.truth, np.asarray(outputs["prediction"]).ravel())
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the labels do not compare with {record.address}'s answers: {exc}",
            pointer="/label",
        ) from exc
    raise InvalidInputError(
        f"{record.address} answers neither a label nor a prediction: no quality to compare"
    )


def _batch(record: VersionRecord, columns: Mapping[str, np.ndarray]) -> Batch:
    """The hold-out's features shaped for ``record``: every column, in file order, for a
    tensor model; the columns it names for a columns model."""
    signature = record.signature
    if signature.kind is SignatureKind.TENSOR:
        arrays = {signature.inputs[0].name: np.column_stack(list(columns.values()))}
    else:
        arrays = {s.name: columns[s.name] for s in signature.inputs if s.name in columns}
    try:
        return signature.conform(arrays)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"the hold-out data does not fit {record.address}: {exc.detail}"
        ) from exc


def _compared(new: Quality, old: Quality, drop: float) -> tuple[str, str]:
    """(what got worse beyond ``drop``, or "") and every compared metric, for the detail."""
    worse, shown = [], []
    higher = ("accuracy", "f1") if new.kind == "classification" else ("r2",)
    for metric in higher:
        a, b = new.metrics.get(metric), old.metrics.get(metric)
        if a is None or b is None:
            continue
        shown.append(f"{metric} {a:.4f} (production {b:.4f})")
        if b - a > drop:
            worse.append(f"{metric} {a:.4f} < {b:.4f} - {drop:g}")
    if new.kind == "regression":
        a, b = new.metrics.get("rmse"), old.metrics.get("rmse")
        if a is not None and b is not None:
            shown.append(f"rmse {a:.4f} (production {b:.4f})")
            if a > b * (1 + drop):
                worse.append(f"rmse {a:.4f} > {b:.4f} x (1 + {drop:g})")
    return "; ".join(worse), ", ".join(shown)


def _latency_check(
    loaded: _Loaded,
    candidate: VersionRecord,
    holdout: HoldOut | None,
    options: GateOptions,
    verified: bool,
) -> Check:
    if not verified:
        return Check("latency", Status.SKIP, "the candidate's artifact did not verify")
    try:
        runtime, example = loaded.get(candidate)
        rows = _rows_for_timing(candidate, holdout, example)
        if rows is None:
            return Check("latency", Status.SKIP, "no rows to time: no hold-out data, no example")
        times = list(_timed(runtime, rows, options.latency_runs))
    except ModelportError as exc:
        return Check("latency", Status.FAIL, exc.detail)
    p50, p99 = (float(np.percentile(times, q)) * 1000 for q in (50, 99))
    detail = (
        f"p99 {p99:.2f} ms, p50 {p50:.2f} ms over {len(times)} single-row predictions "
        f"(budget {options.latency_budget_ms:g} ms)"
    )
    status = Status.FAIL if p99 > options.latency_budget_ms else Status.PASS
    return Check("latency", status, detail)


def _rows_for_timing(
    record: VersionRecord, holdout: HoldOut | None, example: Batch | None
) -> Batch | None:
    """Hold-out rows when they fit the candidate (real data), else its stored example."""
    if holdout is not None:
        try:
            return _batch(record, holdout.columns)
        except InvalidInputError:
            pass  # reported by the quality check; timing still has the example
    return example


def _timed(runtime: Runtime, rows: Batch, runs: int) -> Iterator[float]:
    """Seconds per single-row prediction, cycling through ``rows`` (sliced up front, so that
    slicing is not timed)."""
    singles = [rows.slice(i, i + 1) for i in range(min(rows.n_rows, 1000))]
    for index in range(runs):
        row = singles[index % len(singles)]
        start = time.perf_counter()
        call_model(runtime, row)
        yield time.perf_counter() - start


def _card(candidate: VersionRecord) -> Check:
    missing = CardFields.of(candidate).missing()
    if not candidate.description.strip():
        missing.insert(0, "description")
    if missing:
        hint = f"fill with `modelport card edit {candidate.address}`"
        return Check("card", Status.FAIL, f"missing: {', '.join(missing)}; {hint}")
    return Check("card", Status.PASS, "description and every card field written")
