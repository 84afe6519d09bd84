"""Version and model metadata (tags, params, metrics, lineage) made plain JSON, or a 422.

These become JSON columns, and a value JSON cannot hold (NaN, an arbitrary object, absurd
nesting) must be refused before anything is stored, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from modelport.errors import InvalidInputError

MAX_METADATA_DEPTH = 32
"""Deepest nesting of one tags / params / metrics / lineage entry: ample for real metadata,
and far below what JSON encoders (ours, the database's, the HTTP layer's) can recurse into."""


def json_field(field: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """``value`` as plain JSON (numpy scalars unwrapped), or a 422 pointing at the bad entry."""
    if value is not None and not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{field} must be a mapping of names to values, got {type(value).__name__}",
            pointer=f"/{field}",
        )
    plain: dict[str, Any] = {}
    for key, item in (value or {}).items():
        pointer = f"/{field}/{_escape(str(key))}"
        try:
            text = json.dumps(item, allow_nan=False, default=_unwrap_scalar)
        except (TypeError, ValueError, RecursionError) as exc:
            reason = (
                "NaN and infinity have no JSON form"
                if _non_finite(item)
                else "it nests too deeply"
                if isinstance(exc, RecursionError)
                else f"{type(item).__name__} is not JSON-serialisable"
            )
            raise InvalidInputError(
                f"{field} entry {key!r} cannot be stored: {reason}", pointer=pointer
            ) from exc
        plain[str(key)] = json.loads(text)
        if _depth(plain[str(key)]) > MAX_METADATA_DEPTH:
            raise InvalidInputError(
                f"{field} entry {key!r} nests deeper than {MAX_METADATA_DEPTH} levels",
                pointer=pointer,
            )
    return plain


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 0)]
    while level:
        item, depth = level.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children)
    return deepest


def _escape(token: str) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _unwrap_scalar(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars, 0-d arrays
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _non_finite(value: Any) -> bool:
    try:
        return not math.isfinite(value)
    except (TypeError, ValueError):
        return False
