"""Between Arrow record batches and the model: its inputs out of a batch, its outputs (and
the passthrough columns) into the rows written.

The output schema is fixed before the first row from the model's signature, so every part
of a run (an empty one included) has the same columns: the passthrough columns as read, one
column per model output (a 2-D output as a fixed-size list in Parquet, or one column per
position, ``probabilities_0`` …, in CSV), then ``model_version``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from modelport.errors import InvalidInputError
from modelport.jobs.batch.parts import FileFormat
from modelport.runtimes.batch import Outputs
from modelport.runtimes.signature import STRING, Signature, SignatureKind, TensorSpec

VERSION_COLUMN = "model_version"


def input_arrays(
    batch: pa.RecordBatch, signature: Signature, passthrough: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The model's inputs as named arrays, and the column each came from (for errors)."""
    if signature.kind is SignatureKind.TENSOR:
        names = [n for n in batch.schema.names if n not in passthrough]
        matrix = np.column_stack([_numpy(batch.column(n)) for n in names]) if names else None
        name = signature.inputs[0].name
        return {name: matrix if matrix is not None else np.empty((batch.num_rows, 0))}, {name: ""}
    arrays: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        index = batch.schema.get_field_index(spec.name)
        if index < 0:
            raise InvalidInputError(
                f"the input has no column {spec.name!r} (it has {', '.join(batch.schema.names)})",
                pointer=f"/{spec.name}",
            )
        arrays[spec.name] = _numpy(batch.column(index))
    return arrays, {name: f"/{name}" for name in arrays}


def _numpy(column: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    array: np.ndarray = column.to_numpy(zero_copy_only=False)
    return array


@dataclass(frozen=True, slots=True)
class OutputLayout:
    """Which columns the output has and how a model answer becomes them."""

    schema: pa.Schema
    outputs: tuple[TensorSpec, ...]
    passthrough: tuple[str, ...]
    format: FileFormat

    @classmethod
    def of(
        cls,
        signature: Signature,
        input_schema: pa.Schema,
        passthrough: Sequence[str],
        chosen: Sequence[str],
        format: FileFormat,
    ) -> OutputLayout:
        """``chosen``: the outputs to write (none named: all of them)."""
        missing = [name for name in passthrough if input_schema.get_field_index(name) < 0]
        if missing:
            raise InvalidInputError(
                f"passthrough column(s) {', '.join(missing)} not in the input "
                f"(it has {', '.join(input_schema.names)})",
                pointer="/passthrough",
            )
        outputs = tuple(s for s in signature.outputs if not chosen or s.name in chosen)
        unknown = set(chosen) - {s.name for s in signature.outputs}
        if unknown:
            names = ", ".join(s.name for s in signature.outputs)
            raise InvalidInputError(
                f"unknown output(s) {', '.join(sorted(unknown))}; this model returns {names}",
                pointer="/outputs",
            )
        fields = [input_schema.field(name) for name in passthrough]
        for spec in outputs:
            fields.extend(_fields(spec, format))
        fields.append(pa.field(VERSION_COLUMN, pa.int32()))
        written = [f.name for f in fields]
        clashes = sorted({n for n in written if written.count(n) > 1})
        if clashes:
            raise InvalidInputError(
                f"column(s) {', '.join(clashes)} would be written twice: a passthrough column "
                "has the name of a model output",
                pointer="/passthrough",
            )
        return cls(pa.schema(fields), outputs, tuple(passthrough), format)

    def dictionary_columns(self) -> list[str]:
        """Columns worth a Parquet dictionary: the ones whose values repeat. Labels, the version
        and text passthrough columns (categories) do; scores hardly do, nor do numeric
        passthrough columns (row ids), and a dictionary tried on each of them made writing the
        slowest step of a small model's run (bench/batch_scoring.py)."""
        passthrough = set(self.passthrough)
        return [
            f.name
            for f in self.schema
            if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
            or (f.name not in passthrough and not _floating(f.type))
        ]

    def table(self, batch: pa.RecordBatch, outputs: Outputs, version: int) -> pa.Table:
        columns: list[pa.Array] = [batch.column(name) for name in self.passthrough]
        for spec in self.outputs:
            columns.extend(_arrays(spec, np.asarray(outputs[spec.name]), self.format))
        columns.append(pa.array(np.full(batch.num_rows, version, dtype=np.int32)))
        return pa.Table.from_arrays(
            [c.cast(f.type) for c, f in zip(columns, self.schema, strict=True)],
            schema=self.schema,
        )


def _floating(kind: pa.DataType) -> bool:
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind):
        return _floating(kind.value_type)
    return bool(pa.types.is_floating(kind))


def _element_type(spec: TensorSpec) -> pa.DataType:
    return pa.string() if spec.dtype == STRING else pa.from_numpy_dtype(spec.numpy_dtype)


def _fields(spec: TensorSpec, format: FileFormat) -> list[pa.Field]:
    element = _element_type(spec)
    if spec.width == 1:
        return [pa.field(spec.name, element)]
    if format is FileFormat.PARQUET:
        return [pa.field(spec.name, pa.list_(element, spec.width))]
    return [pa.field(f"{spec.name}_{i}", element) for i in range(spec.width)]


def _arrays(spec: TensorSpec, array: np.ndarray, format: FileFormat) -> list[pa.Array]:
    if spec.width == 1:
        return [pa.array(array.reshape(len(array)))]
    flat = array.reshape(len(array), spec.width)
    if format is FileFormat.PARQUET:
        return [pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), spec.width)]
    return [pa.array(flat[:, i]) for i in range(spec.width)]
