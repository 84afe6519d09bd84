"""MLflow scoring bodies (docs/protocols.md, MLflow) decoded into named arrays for a signature.

No HTTP here: :func:`body_format` reads the Content-Type, the ``decode_*`` functions turn a
JSON payload, a CSV or a Parquet file into ``input name -> array``, plus where each input sat
in the body so that errors can point at the offending row. pandas is imported for CSV and
Parquet only. :func:`decode_invocation` is the whole request for the inference service.
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from modelport.codecs.decoded import Decoded, check_input_count
from modelport.codecs.json import JsonBody, as_array, parse_object
from modelport.codecs.mlflow_rows import row_locator
from modelport.codecs.v1 import positional, rows_to_columns
from modelport.errors import InvalidInputError, MalformedRequestError, UnsupportedMediaTypeError
from modelport.runtimes.signature import STRING, Signature, SignatureKind, sample_arrays

JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_SPLIT_KEYS = ("columns", "data", "index")


class BodyFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


MEDIA_TYPES = {
    "application/json": BodyFormat.JSON,
    "text/csv": BodyFormat.CSV,
    "application/csv": BodyFormat.CSV,
    "application/vnd.apache.parquet": BodyFormat.PARQUET,
}


@dataclass(frozen=True, slots=True)
class Place:
    """Where one input sits in the body: the field holding it, and a value's path inside a row.

    ``cell`` is what follows the row index (``/age`` in ``/dataframe_records/3/age``); None when
    rows have no pointer of their own (CSV, a single unbatched row).
    """

    path: str
    cell: str | None = ""

    def row(self, index: int) -> str:
        return self.path if self.cell is None else f"{self.path}/{index}{self.cell}"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A body as named arrays, where they came from, and the ``params`` that matter."""

    arrays: dict[str, np.ndarray]
    places: dict[str, Place]
    output: str | None = None
    ignored_params: tuple[str, ...] = ()


Columns = tuple[dict[str, np.ndarray], dict[str, Place]]


def body_format(content_type: str | None) -> BodyFormat:
    """The body's format from Content-Type; MLflow allows one parameter, ``charset=utf-8``."""
    accepted = ", ".join(MEDIA_TYPES)
    if not content_type:
        raise UnsupportedMediaTypeError(f"send a Content-Type header: one of {accepted}")
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    found = MEDIA_TYPES.get(media_type.lower())
    if found is None:
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Type {media_type!r}; send one of {accepted}"
        )
    for parameter in filter(None, parameters):
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset":
            raise UnsupportedMediaTypeError(
                f"unsupported Content-Type parameter {parameter!r}; only charset=utf-8 is allowed"
            )
        if value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedMediaTypeError(
                f"unsupported charset {value.strip()!r}; bodies must be utf-8"
            )
    return found


def decode_json(body: JsonBody, signature: Signature) -> Parsed:
    """Exactly one of the four JSON formats, plus optional ``params``, as named arrays."""
    payload, check = body.payload, body.has_booleans
    keys = [key for key in JSON_FORMATS if key in payload]
    if len(keys) != 1:
        raise MalformedRequestError(
            f"send a JSON object with exactly one of {', '.join(JSON_FORMATS)} (plus optional "
            f"params); got keys: {', '.join(payload) or 'none'}",
            pointer="",
        )
    key = keys[0]
    output, ignored = _params(payload.get("params"))
    if key == "dataframe_split":
        arrays, places = _split(payload[key], signature, check)
    elif key == "dataframe_records":
        arrays, places = _records(payload[key], signature, check)
    else:
        arrays, places = _tf_serving(key, payload[key], signature, check)
    return Parsed(arrays, places, output, ignored)


def _params(params: Any) -> tuple[str | None, tuple[str, ...]]:
    """``params.output`` picks an output; MLflow ignores params a model doesn't declare."""
    if not isinstance(params, dict):
        return None, () if params is None else ("params",)
    output = params.get("output")
    if output is not None and not isinstance(output, str):
        raise MalformedRequestError(
            "params.output must be the name of an output (a string)", pointer="/params/output"
        )
    return output, tuple(key for key in params if key != "output")


def _split(value: Any, signature: Signature, check: bool) -> Columns:
    """pandas ``orient="split"``: rows by position, named when the client sends ``columns``."""
    if not isinstance(value, dict):
        raise MalformedRequestError(
            "dataframe_split must be an object with data and optional columns and index",
            pointer="/dataframe_split",
        )
    extra = [key for key in value if key not in _SPLIT_KEYS]
    if extra:
        raise MalformedRequestError(
            f"dataframe_split takes only columns, data and index; got {', '.join(extra)}",
            pointer=f"/dataframe_split/{_escape(extra[0])}",
        )
    pointer = "/dataframe_split/data"
    rows = _rows(value.get("data"), pointer, list)
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise MalformedRequestError(
            f"dataframe_split.index must be a list with one entry per row ({len(rows)})",
            pointer="/dataframe_split/index",
        )
    columns = value.get("columns")
    if columns is not None:
        columns = _column_names(columns, signature)
    if signature.kind is SignatureKind.TENSOR:
        name = signature.inputs[0].name
        return {name: as_array(rows, pointer, check_booleans=check)}, {name: Place(pointer)}
    if columns is None:
        return (positional(rows, signature, pointer, check), _positional_places(signature, pointer))
    return _transpose(rows, columns, pointer, check)


def _column_names(columns: Any, signature: Signature) -> list[str]:
    """``dataframe_split.columns`` as distinct names; for a tensor, one per feature.

    A DataFrame without names has integer labels (``0, 1, ...``); like CSV headers, they
    name columns as text.
    """
    pointer = "/dataframe_split/columns"
    if not isinstance(columns, list) or not all(
        isinstance(c, str | int) and not isinstance(c, bool) for c in columns
    ):
        raise MalformedRequestError(
            "dataframe_split.columns must be a list of column names", pointer=pointer
        )
    check_input_count(len(columns), pointer)
    names = [str(c) for c in columns]
    if len(set(names)) != len(names):
        raise MalformedRequestError("dataframe_split.columns names a column twice", pointer=pointer)
    if signature.kind is SignatureKind.TENSOR and len(names) != signature.inputs[0].width:
        raise InvalidInputError(
            f"this model takes {signature.inputs[0].width} features per "
            f"row; dataframe_split.columns names {len(names)}",
            pointer=pointer,
        )
    return names


def _transpose(rows: list[list[Any]], names: list[str], pointer: str, check: bool) -> Columns:
    """Rows of values for named columns, as one array per column (numbers stay numbers)."""
    for index, row in enumerate(rows):
        if len(row) != len(names):
            raise MalformedRequestError(
                f"row {index} has {len(row)} values for {len(names)} columns",
                pointer=f"{pointer}/{index}",
            )
    columns = zip(*rows, strict=True)
    arrays = {
        name: as_array(list(column), f"{pointer}/0/{i}", check_booleans=check)
        for i, (name, column) in enumerate(zip(names, columns, strict=True))
    }
    return arrays, {name: Place(pointer, f"/{i}") for i, name in enumerate(names)}


def _records(value: Any, signature: Signature, check: bool) -> Columns:
    """pandas ``orient="records"``: objects by column name; a tensor takes their values in order."""
    pointer = "/dataframe_records"
    columns = rows_to_columns(_rows(value, pointer, dict), pointer, check)
    is_tensor = signature.kind is SignatureKind.TENSOR
    if is_tensor and columns and all(array.ndim == 1 for array in columns.values()):
        name = signature.inputs[0].name
        return {name: np.column_stack(list(columns.values()))}, {name: Place(pointer)}
    return columns, {name: Place(pointer, f"/{_escape(name)}") for name in columns}


def _tf_serving(key: str, value: Any, signature: Signature, check: bool) -> Columns:
    """``instances`` / ``inputs`` as in KServe V1: rows, objects by name, or named columns."""
    pointer = f"/{key}"
    if key == "inputs" and isinstance(value, dict):
        check_input_count(len(value), pointer)
        paths = {name: f"{pointer}/{_escape(name)}" for name in value}
        return (
            {
                name: as_array(column, paths[name], check_booleans=check)
                for name, column in value.items()
            },
            {name: Place(path) for name, path in paths.items()},
        )
    if not isinstance(value, list) or not value:
        raise MalformedRequestError(f"{key} must be a non-empty list", pointer=pointer)
    if all(isinstance(row, dict) for row in value):
        columns = rows_to_columns(value, pointer, check)
        return columns, {name: Place(pointer, f"/{_escape(name)}") for name in columns}
    flat = not all(isinstance(row, list) for row in value)
    return (
        positional(value, signature, pointer, check),
        _positional_places(signature, pointer, flat),
    )


def _positional_places(signature: Signature, pointer: str, flat: bool = False) -> dict[str, Place]:
    """Where unnamed rows put each input: the whole row (tensor) or its i-th value."""
    if signature.kind is SignatureKind.TENSOR:
        return {signature.inputs[0].name: Place(pointer, None if flat else "")}
    if flat:  # one row sent without its batch dimension: the values sit right under the field
        return {spec.name: Place(f"{pointer}/{i}", None) for i, spec in enumerate(signature.inputs)}
    return {spec.name: Place(pointer, f"/{i}") for i, spec in enumerate(signature.inputs)}


def _rows(value: Any, pointer: str, row_type: type) -> list[Any]:
    """A non-empty list whose rows are all lists (split) or all objects (records)."""
    label = pointer.strip("/").replace("/", ".")
    if not isinstance(value, list) or not value:
        raise MalformedRequestError(f"{label} must be a non-empty list of rows", pointer=pointer)
    for index, row in enumerate(value):
        if not isinstance(row, row_type):
            kind = "a list" if row_type is list else "an object"
            raise MalformedRequestError(
                f"each row of {label} must be {kind}; row {index} is not",
                pointer=f"{pointer}/{index}",
            )
    return value


def _escape(name: str) -> str:
    """A key as one JSON pointer segment (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def decode_csv(body: bytes, signature: Signature) -> Parsed:
    """A CSV with a header row, as ``DataFrame.to_csv(index=False)`` writes it."""
    import pandas as pd

    # string inputs stay strings even when they look like numbers ("75001")
    header = body.split(b"\n", 1)[0]
    check_input_count(header.count(b",") + 1, "")
    strings = (
        {spec.name: str for spec in signature.inputs if spec.dtype == STRING}
        if signature.kind is SignatureKind.COLUMNS
        else {}
    )
    try:
        # low_memory=False: one dtype per column for the whole body (chunked inference warns
        # on a large body with one bad cell, and may type one column two ways)
        frame = pd.read_csv(io.BytesIO(body), dtype=strings or None, low_memory=False)
    except ValueError as exc:  # pandas' ParserError, EmptyDataError and UnicodeDecodeError
        raise MalformedRequestError(
            f"Failed to parse input as a Pandas DataFrame: {exc}", pointer=""
        ) from exc
    return _frame(frame, signature)


def decode_parquet(body: bytes, signature: Signature) -> Parsed:
    """A Parquet file of a DataFrame; only when the server has pyarrow."""
    if importlib.util.find_spec("pyarrow") is None:
        raise UnsupportedMediaTypeError(
            "Parquet bodies need pyarrow on the server; send application/json or text/csv"
        )
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise MalformedRequestError(
            f"Failed to parse input as a Pandas DataFrame: {exc}", pointer=""
        ) from exc
    return _frame(frame, signature)


def _frame(frame: Any, signature: Signature) -> Parsed:
    """A DataFrame by position (tensor) or by column name (columns signature)."""
    if signature.kind is SignatureKind.TENSOR:
        name = signature.inputs[0].name
        return Parsed({name: frame.to_numpy()}, {name: Place("", None)})
    arrays = sample_arrays(frame)[1]
    return Parsed(arrays, {name: Place(f"/{_escape(name)}", None) for name in arrays})


@dataclass(frozen=True, slots=True)
class InvocationExtras:
    output: str
    """The output to answer with (``?output=``, ``params.output`` or the first one)."""
    ignored_params: tuple[str, ...]


def decode_invocation(
    body: bytes, content_type: str | None, signature: Signature, query_output: str | None
) -> Decoded[InvocationExtras]:
    """A whole ``/invocations`` request for ``signature``, whatever its content type."""
    found = body_format(content_type)
    if found is BodyFormat.JSON:
        parsed = decode_json(parse_object(body), signature)
    elif found is BodyFormat.CSV:
        parsed = decode_csv(body, signature)
    else:
        parsed = decode_parquet(body, signature)
    chosen = signature.output_name(_output_name(query_output, parsed.output))
    return Decoded(
        parsed.arrays,
        {name: place.path for name, place in parsed.places.items()},
        InvocationExtras(chosen, parsed.ignored_params),
        row_locator(signature, parsed.arrays, parsed.places),
    )


def _output_name(query: str | None, param: str | None) -> str | None:
    """``?output=`` (as in V1) or ``params.output``; naming two different outputs is an error."""
    if query is not None and param is not None and query != param:
        raise MalformedRequestError(
            f"?output={query} and params.output={param} disagree; name the output once",
            pointer="/params/output",
        )
    return query or param
