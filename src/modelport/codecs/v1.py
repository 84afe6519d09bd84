"""KServe V1 / TensorFlow-Serving predict bodies (docs/protocols.md, V1).

``instances`` (rows) or ``inputs`` (columns), never both. Rows may be positional lists (mapped
onto the signature in order) or objects keyed by input name. The answer is always
``{"predictions": [...]}``: the first output by default (label / prediction), or the one the
client named (``?output=probabilities``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.codecs.decoded import Decoded, check_input_count
from modelport.codecs.json import JsonBody, as_array, dumps, jsonable, parse_object
from modelport.errors import InvalidInputError, MalformedRequestError
from modelport.runtimes.batch import Outputs
from modelport.runtimes.signature import Signature, SignatureKind


def decode_predict(body: bytes, signature: Signature, output: str | None) -> Decoded[str]:
    """A predict body for ``signature``; ``extras`` is the output to answer with."""
    chosen = signature.output_name(output)
    arrays, pointers = decode(parse_object(body), signature)
    return Decoded(arrays, pointers, chosen)


def encode_predictions(outputs: Outputs, chosen: str) -> bytes:
    return dumps({"predictions": jsonable(outputs[chosen])})


def decode(body: JsonBody, signature: Signature) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``instances`` or ``inputs`` as ``input name -> array``, plus the field each came from."""
    payload, check = body.payload, body.has_booleans
    has_rows, has_columns = "instances" in payload, "inputs" in payload
    if has_rows == has_columns:
        raise MalformedRequestError(
            "send exactly one of 'instances' (rows) or 'inputs' (columns)", pointer="/instances"
        )
    key = "instances" if has_rows else "inputs"
    value, pointer = payload[key], f"/{key}"
    if isinstance(value, dict) and key == "inputs":
        check_input_count(len(value), pointer)
        pointers = {k: f"{pointer}/{k}" for k in value}
        return {
            k: as_array(v, pointers[k], check_booleans=check) for k, v in value.items()
        }, pointers
    if not isinstance(value, list) or not value:
        raise MalformedRequestError(f"'{key}' must be a non-empty list", pointer=pointer)
    if all(isinstance(row, dict) for row in value):
        arrays = rows_to_columns(value, pointer, check)
    else:
        arrays = positional(value, signature, pointer, check)
    return arrays, dict.fromkeys(arrays, pointer)


def rows_to_columns(
    rows: list[dict[str, Any]], pointer: str, check_booleans: bool = False
) -> dict[str, np.ndarray]:
    """``[{"a": 1, "b": "x"}, ...]`` as columns; every row must carry the same keys."""
    names = list(rows[0])
    check_input_count(len(names), f"{pointer}/0")
    for index, row in enumerate(rows):
        if list(row) != names and set(row) != set(names):
            raise MalformedRequestError(
                f"row {index} has keys {_few(row)}, row 0 has {_few(names)}",
                pointer=f"{pointer}/{index}",
            )
    return {
        n: as_array([row[n] for row in rows], f"{pointer}/0/{n}", check_booleans=check_booleans)
        for n in names
    }


def _few(keys: Any) -> str:
    names = sorted(keys)
    return str(names) if len(names) <= 20 else f"{names[:20]} ... ({len(names)} keys)"


def positional(
    value: list[Any], signature: Signature, pointer: str, check_booleans: bool = False
) -> dict[str, np.ndarray]:
    """Unnamed rows: the tensor input itself, or columns taken in signature order.

    Mixed-type rows are transposed as Python lists, so ``[34, "paris"]`` keeps its number a
    number (numpy would turn the whole row into strings).
    """
    if signature.kind is SignatureKind.TENSOR:
        return {signature.inputs[0].name: as_array(value, pointer, check_booleans=check_booleans)}
    rows = value if all(isinstance(row, list) for row in value) else [value]
    width = len(signature.inputs)
    for index, row in enumerate(rows):
        if len(row) != width:
            raise InvalidInputError(
                f"each row must have {width} values ({', '.join(signature.input_names())}), "
                f"row {index} has {len(row)}",
                pointer=f"{pointer}/{index}",
            )
    columns = zip(*rows, strict=True)
    return {
        spec.name: as_array(list(column), f"{pointer}/0/{i}", check_booleans=check_booleans)
        for i, (spec, column) in enumerate(zip(signature.inputs, columns, strict=True))
    }
