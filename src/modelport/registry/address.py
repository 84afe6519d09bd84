"""Model addresses: ``name``, ``name/3``, ``name@alias``, optionally prefixed ``models:/``.

``latest`` and all-digit words are reserved: ``name@latest`` (and MLflow's
``models:/name/latest``) mean the newest version, and an alias never looks like a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import InvalidInputError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
MAX_LENGTH = {"model name": 200, "alias": 100}
"""Longest name of each kind, as wide as its database column."""
LATEST = "latest"
MAX_VERSION = 2**31 - 1
"""Version numbers are 32-bit database integers."""
_ADDRESS = re.compile(
    r"(?:models:/)?(?P<name>[^/@]+)(?:/(?P<version>\d+|latest)|@(?P<alias>[^/@]+))?"
)


def check_name(name: str, what: str = "model name") -> str:
    limit = MAX_LENGTH.get(what, 200)
    # fullmatch, not match + "$": "$" also matches before a trailing newline
    if NAME_PATTERN.fullmatch(name) is None or len(name) > limit:
        raise InvalidInputError(
            f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' (at most {limit})",
            pointer=f"/{what.replace(' ', '_')}",
        )
    return name


def is_reserved_alias(alias: str) -> bool:
    return alias.isdigit() or alias == LATEST


@dataclass(frozen=True, slots=True)
class ModelAddress:
    """Which version a request means: a fixed number, an alias, or (neither) the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelAddress:
        match = _ADDRESS.fullmatch(text.strip())
        if match is None:
            raise InvalidInputError(
                f"invalid model address {text!r}: use name, name/3 or name@alias", pointer="/model"
            )
        name = check_name(match["name"])
        version, alias = match["version"], match["alias"]
        if alias is not None and alias.isdigit():
            raise InvalidInputError(
                f"invalid model address {text!r}: a version is written {name}/{alias}",
                pointer="/model",
            )
        if version == LATEST or alias == LATEST:
            return cls(name)
        # the length first: int() refuses more than 4300 digits with a ValueError
        if version is not None and (
            len(version) > len(str(MAX_VERSION)) or int(version) > MAX_VERSION
        ):
            raise InvalidInputError(
                f"invalid model address {text[:60]!r}: no version is that large", pointer="/model"
            )
        return cls(
            name, int(version) if version else None, check_name(alias, "alias") if alias else None
        )

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
