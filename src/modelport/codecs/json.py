"""Fast JSON in and out of inference requests: orjson, numpy straight to bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelport.errors import MalformedRequestError

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A parsed request body, and whether JSON ``true``/``false`` occur anywhere in it.

    numpy silently turns ``[1.5, true]`` into ``[1.5, 1.0]``; only bodies that contain a
    boolean token pay for the walk that catches it (see :func:`as_array`).
    """

    payload: dict[str, Any]
    has_booleans: bool


def parse_object(body: bytes) -> JsonBody:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    if not body:
        raise MalformedRequestError("the request body is empty; send a JSON object", pointer="")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}", pointer="") from exc
    if not isinstance(payload, dict):
        raise MalformedRequestError("the body must be a JSON object", pointer="")
    return JsonBody(payload, b"true" in body or b"false" in body)


def as_array(value: Any, pointer: str, *, check_booleans: bool = False) -> np.ndarray:
    """A JSON list as an ndarray; ragged or non-scalar data is a 400 naming the field.

    With ``check_booleans``, a numeric result that came from a list holding booleans is
    returned as an object array instead, so the signature check rejects the booleans.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise MalformedRequestError(
            f"{pointer or 'data'} is not a rectangular array (rows of different lengths?)",
            pointer=pointer,
        ) from exc
    if array.dtype.kind == "O" and any(isinstance(v, list | dict) for v in array.ravel()):
        raise MalformedRequestError(
            f"{pointer or 'data'} is not a rectangular array", pointer=pointer
        )
    if check_booleans and array.dtype.kind in "iuf" and _holds_bool(value):
        return np.asarray(value, dtype=object)
    if array.dtype.kind == "U" and not all(isinstance(v, str) for v in _flat(value)):
        return np.asarray(value, dtype=object)  # numpy would turn 7 into "7" beside strings
    return array


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _flat(item)]
    return [value]


def _holds_bool(value: Any) -> bool:
    if isinstance(value, list):
        return any(_holds_bool(v) for v in value)
    return isinstance(value, bool)


def jsonable(array: np.ndarray) -> Any:
    """Something orjson writes fast: numeric arrays as they are, object arrays as lists."""
    if array.dtype.kind in "biuf" and array.flags.c_contiguous:
        return array
    return array.tolist()


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, option=_NUMPY)
