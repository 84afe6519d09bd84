"""Personal fields of logged predictions, masked before anything is written.

Each configured field (an input column or an output name) is either dropped, replaced by an
HMAC-SHA256 under a secret salt (equal values still join and count alike, yet the value cannot
be read back or guessed by hashing candidates without the salt), or masked as ``****``. A
missing value stays missing either way, so the field's missing rate is still measured.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.config import Masking

MASKED = "****"
HASH_CHARS = 32


class Masker:
    def __init__(self, rules: Mapping[str, Masking], salt: bytes) -> None:
        self._rules = dict(rules)
        self._salt = salt

    def __bool__(self) -> bool:
        return bool(self._rules)

    def apply(self, columns: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray | list[Any]]:
        """``columns`` with every configured field dropped, hashed or masked; the others are
        passed through untouched (no copy when no field is configured)."""
        if not self._rules or not self._rules.keys() & columns.keys():
            return columns
        masked: dict[str, np.ndarray | list[Any]] = {}
        for name, values in columns.items():
            rule = self._rules.get(name)
            if rule is None:
                masked[name] = values
            elif rule is Masking.HASH:
                masked[name] = [None if _missing(v) else self.hash(v) for v in values.tolist()]
            elif rule is Masking.MASK:
                masked[name] = [None if _missing(v) else MASKED for v in values.tolist()]
            # Masking.DROP: the field is left out
        return masked

    def hash(self, value: object) -> str:
        digest = hmac.new(self._salt, str(value).encode(), hashlib.sha256).hexdigest()
        return digest[:HASH_CHARS]


def pii_salt(secret: bytes) -> bytes:
    """The salt derived from the server secret when none is configured: never the secret
    itself, so a leaked hash says nothing about the key hashing."""
    return hmac.new(secret, b"modelport prediction-log pii salt", hashlib.sha256).digest()


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)
