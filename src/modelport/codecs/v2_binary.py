"""The binary tensor data extension of V2 (docs/protocols.md), as Triton defines it.

After the JSON header come raw tensors, one chunk per binary input in input order:
little-endian, row-major, native element size; each BYTES element is a 4-byte little-endian
length followed by its bytes. Numeric tensors go through ``frombuffer`` / ``tobytes``, never a
Python loop per element.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from modelport.errors import MalformedRequestError

_LENGTH = struct.Struct("<I")


class BinaryReader:
    """Hands out the binary part of a request chunk by chunk, in input order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int, pointer: str) -> memoryview:
        if self._offset + size > len(self._data):
            raise MalformedRequestError(
                f"binary_data_size {size} runs past the end of the body "
                f"({len(self._data) - self._offset} binary bytes left); binary inputs need "
                "the Inference-Header-Content-Length header",
                pointer=pointer,
            )
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def finish(self) -> None:
        extra = len(self._data) - self._offset
        if extra:
            raise MalformedRequestError(
                f"{extra} bytes follow the last binary input", pointer="/inputs"
            )


def from_binary(
    chunk: memoryview, dtype: np.dtype[Any], shape: tuple[int, ...], pointer: str
) -> np.ndarray:
    """Raw little-endian tensor bytes (BYTES: 4-byte length + UTF-8 per element) as an array."""
    count = math.prod(shape)
    if dtype.kind == "O":
        elements = _unpack_bytes(chunk, pointer)
        if len(elements) != count:
            raise MalformedRequestError(
                f"{pointer}: {len(elements)} BYTES elements, shape {list(shape)} needs {count}",
                pointer=pointer,
            )
        array = np.empty(count, dtype=object)
        array[:] = elements
        return array.reshape(shape)
    dtype = dtype.newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise MalformedRequestError(
            f"{pointer}: {len(chunk)} bytes, shape {list(shape)} of {dtype.name} needs "
            f"{count * dtype.itemsize}",
            pointer=pointer,
        )
    return np.frombuffer(chunk, dtype=dtype).reshape(shape)


def _unpack_bytes(chunk: memoryview, pointer: str) -> list[str]:
    elements: list[str] = []
    offset, end = 0, len(chunk)
    while offset < end:
        if offset + 4 > end:
            raise MalformedRequestError(f"{pointer}: BYTES data is truncated", pointer=pointer)
        (length,) = _LENGTH.unpack_from(chunk, offset)
        start, offset = offset + 4, offset + 4 + length
        if offset > end:
            raise MalformedRequestError(f"{pointer}: BYTES data is truncated", pointer=pointer)
        try:
            elements.append(str(chunk[start:offset], "utf-8"))
        except UnicodeDecodeError as exc:
            raise MalformedRequestError(
                f"{pointer}: BYTES element {len(elements)} is not UTF-8 text", pointer=pointer
            ) from exc
    return elements


def to_binary(array: np.ndarray) -> bytes:
    """Little-endian row-major bytes; BYTES elements each prefixed by their 4-byte length."""
    if array.dtype.kind in "biuf":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    encoded = [as_text(v).encode() for v in array.ravel().tolist()]
    return b"".join(_LENGTH.pack(len(e)) + e for e in encoded)


def as_text(value: Any) -> str:
    """A BYTES element as the text JSON carries; binary-only bytes are decoded leniently."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)
