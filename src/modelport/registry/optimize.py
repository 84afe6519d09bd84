"""Optimize: compile a scikit-learn, LightGBM or XGBoost version to ONNX, proven equal first.

The source version's original object is converted (skl2onnx, onnxmltools), the graph is
prepared like any other model (saved, loaded back, signature inferred) and both runtimes answer
the same sample: labels must be identical, probabilities and predictions within ``atol``.
Only then is the graph registered as a new version naming its source. Every refusal happens
before :meth:`Registry.register`, so a model without a faithful ONNX form changes nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ConversionError, ModelError, ModelLoadError
from modelport.registry.address import ModelAddress
from modelport.registry.conversion import check_convertible, convert, read_original
from modelport.registry.preparation import (
    INPUT_EXAMPLE,
    PreparedModel,
    prepare_object,
    read_example,
)
from modelport.registry.records import VersionRecord
from modelport.registry.registry import Registry
from modelport.runtimes.base import LoadRequest, Runtime, call_model, load_runtime
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature, SignatureKind

_SEED = 0
_LATENCY_CALLS = 200
_WARMUP_CALLS = 20
_MISSING_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class Parity:
    """How the graph's answers compared with the source's on the same rows."""

    rows: int
    atol: float
    max_abs_diff: float
    identical: tuple[str, ...]
    """Outputs compared for equality (labels); the others were compared within ``atol``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "atol": self.atol,
            "max_abs_diff": self.max_abs_diff,
            "identical": list(self.identical),
        }


@dataclass(frozen=True, slots=True)
class Optimization:
    """A registered ONNX version, its source, and the evidence that they answer alike."""

    source: VersionRecord
    record: VersionRecord
    converter: str
    parity: Parity
    latency_us: Mapping[str, float]

    def report(self) -> dict[str, Any]:
        return {
            "source": self.source.address,
            "converter": self.converter,
            "parity": self.parity.to_dict(),
            "latency_us": dict(self.latency_us),
        }

    def summary(self) -> str:
        p = self.parity
        check = (
            f"labels identical on {p.rows} rows, max |Δp| {p.max_abs_diff:.2g}"
            if "label" in p.identical
            else f"max |Δ| {p.max_abs_diff:.2g} on {p.rows} rows"
        )
        return (
            f"optimized {self.source.address} -> {self.record.address} (onnx): {check}; "
            f"in-process predict 1 row: {self.latency_us['source']:.0f} µs -> "
            f"{self.latency_us['onnx']:.0f} µs"
        )


def optimize_version(
    registry: Registry, address: str, *, rows: int = 512, atol: float = 1e-5
) -> Optimization:
    """Register an ONNX compilation of the version at ``address``, or refuse and change nothing.

    ``rows`` sizes the parity sample: the version's stored input example (all of it), then
    rows drawn around it up to ``rows``.
    """
    source = registry.resolve(ModelAddress.parse(address))
    check_convertible(source)
    runtime = registry.load(source)  # before read_original: it refuses an untrusted pickle
    directory = registry.artifact_dir(source)
    sample = _parity_sample(directory, source.signature, rows)
    try:
        expected = call_model(runtime, sample)
    except ModelError as exc:
        raise ConversionError(
            f"{source.address} itself fails on the parity sample (rows like "
            f"its signature accepts): {exc.detail.splitlines()[0]}"
        ) from exc
    graph, converter = convert(read_original(source, directory), source)
    with _prepared(graph, sample, source.signature, registry.scratch_dir) as prepared:
        compiled = load_runtime(
            "onnx",
            LoadRequest(
                prepared.directory, prepared.signature, prepared.saved.options, prepared.trusted
            ),
        )
        parity = _compare(expected, call_model(compiled, sample), atol)
        latency = {"source": _latency_us(runtime, sample), "onnx": _latency_us(compiled, sample)}
        record = registry.register(
            source.name,
            prepared,
            params=source.params,
            metrics=source.metrics,
            tags={"optimized_from": str(source.version)},
            description=f"{source.address} compiled to ONNX by {converter}",
            lineage={
                "source": "optimize",
                "source_version": source.address,
                "converter": converter,
                "runtime": f"onnxruntime {version('onnxruntime')}",
                "parity": parity.to_dict(),
            },
        )
    return Optimization(source, record, converter, parity, latency)


def _parity_sample(directory: Path, signature: Signature, rows: int) -> Batch:
    """The stored example rows, then rows drawn from them with float values jittered (seeded).

    Jittered rows reach values the example does not hold, and any row the signature accepts
    is a request the graph must answer like the source, nulls in nullable inputs included.
    """
    if not (directory / INPUT_EXAMPLE).is_file():
        raise ConversionError("the version has no stored input example to check parity on")
    example = read_example(directory, signature)
    extra = rows - example.n_rows
    if extra <= 0:
        return example
    rng = np.random.default_rng(_SEED)
    picks = rng.integers(0, example.n_rows, extra)
    columns = {}
    for spec in signature.inputs:
        array = example.columns[spec.name]
        drawn = _jitter(array[picks], array, rng)
        columns[spec.name] = np.concatenate(
            [array, _with_missing(drawn, rng) if spec.nullable else drawn]
        )
    return signature.conform(columns)


def _jitter(picked: np.ndarray, reference: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Float values moved by noise on each feature's own scale; other kinds stay as drawn."""
    if picked.dtype.kind != "f":
        return picked
    finite = np.where(np.isfinite(reference), reference, 0.0)
    scale = finite.std(axis=0) + 0.1 * np.abs(finite.mean(axis=0)) + 1e-3
    jittered: np.ndarray = picked + rng.standard_normal(picked.shape) * scale
    return jittered  # NaN (missing) stays NaN


def _with_missing(drawn: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Some values (at least one) missing; staging then infers the input nullable again."""
    if drawn.dtype.kind not in "fO":
        return drawn  # an integer array cannot hold NaN without becoming another dtype
    missing = rng.random(drawn.shape) < _MISSING_SHARE
    missing.flat[0] = True
    result = drawn.copy()
    result[missing] = np.nan if drawn.dtype.kind == "f" else None
    return result


@contextmanager
def _prepared(
    graph: Any, sample: Batch, signature: Signature, scratch: Path | None
) -> Iterator[PreparedModel]:
    """The graph prepared on the parity sample; clients must see the very same inputs."""
    tensor = signature.kind is SignatureKind.TENSOR
    inputs = next(iter(sample.columns.values())) if tensor else dict(sample.columns)
    nullable = {spec.nullable for spec in signature.inputs}
    allow_missing = nullable.pop() if len(nullable) == 1 else None
    try:
        with prepare_object(
            graph, inputs, flavor="onnx", allow_missing=allow_missing, scratch=scratch
        ) as prepared:
            if prepared.signature.inputs != signature.inputs:
                raise ConversionError(
                    f"the ONNX version would take {_inputs_text(prepared.signature)} instead of "
                    f"{_inputs_text(signature)}; clients would notice the switch"
                )
            yield prepared
    except ModelLoadError as exc:
        raise ConversionError(f"the ONNX graph does not run: {exc.detail}") from exc


def _inputs_text(signature: Signature) -> str:
    return ", ".join(f"{s.name}: {s.dtype}{'?' if s.nullable else ''}" for s in signature.inputs)


def _compare(expected: Outputs, actual: Outputs, atol: float) -> Parity:
    """Labels must be identical and floats within ``atol``, else a refusal naming the worst."""
    if list(expected) != list(actual):
        raise ConversionError(
            f"the ONNX graph answers {', '.join(actual)} where the source "
            f"answers {', '.join(expected)}"
        )
    rows = len(next(iter(expected.values())))
    worst, problems, identical = 0.0, [], []
    for name, want in expected.items():
        got = actual[name]
        if want.shape != got.shape:
            problems.append(f"{name} has shape {list(got.shape)}, not {list(want.shape)}")
        elif want.dtype.kind == "f":
            worst = max(worst, _max_abs_diff(want, got))
        else:
            identical.append(name)
            differ = np.flatnonzero(
                (want.astype(object) != got.astype(object)).reshape(rows, -1).any(axis=1)
            )
            if differ.size:
                problems.append(
                    f"{name} differs on {differ.size} of {rows} rows "
                    f"({_row_text(name, int(differ[0]), expected, actual)})"
                )
    if worst > atol:
        problems.append(f"max |difference| {worst:.3g} exceeds atol {atol:g}")
    if problems:
        raise ConversionError(
            f"the ONNX graph does not answer like the source on {rows} rows: " + "; ".join(problems)
        )
    return Parity(rows, atol, worst, tuple(identical))


def _row_text(name: str, row: int, expected: Outputs, actual: Outputs) -> str:
    """One disagreeing row, with its probabilities: a tied vote shows as such."""
    text = f"row {row}: source {expected[name].tolist()[row]!r}"
    other = f"onnx {actual[name].tolist()[row]!r}"
    if "probabilities" not in expected:
        return f"{text}, {other}"
    source_p, onnx_p = (
        ", ".join(f"{p:.8g}" for p in outputs["probabilities"][row])
        for outputs in (expected, actual)
    )
    return f"{text} with probabilities [{source_p}], {other} with [{onnx_p}]"


def _max_abs_diff(want: np.ndarray, got: np.ndarray) -> float:
    diff = np.abs(want.astype(np.float64) - got.astype(np.float64))
    diff[np.isnan(want) & np.isnan(got)] = 0.0  # both missing is agreement
    return float(np.nan_to_num(diff, nan=np.inf).max())


def _latency_us(runtime: Runtime, sample: Batch) -> float:
    """Median in-process time of a one-row predict: what a server pays per lone request."""
    row = sample.slice(0, 1)
    for _ in range(_WARMUP_CALLS):
        call_model(runtime, row)
    times = []
    for _ in range(_LATENCY_CALLS):
        start = time.perf_counter_ns()
        call_model(runtime, row)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000
