"""Model addresses: ``name``, ``name/3``, ``name@alias``, optionally prefixed ``models:/``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import InvalidInputError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_ADDRESS = re.compile(r"^(?:models:/)?(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))?$")


def check_name(name: str, what: str = "model name") -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' (at most 200)",
            pointer=f"/{what.replace(' ', '_')}")
    return name


@dataclass(frozen=True, slots=True)
class ModelAddress:
    """Which version a request means: a fixed number, an alias, or (neither) the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelAddress:
        match = _ADDRESS.match(text.strip())
        if match is None:
            raise InvalidInputError(
                f"invalid model address {text!r}: use name, name/3 or name@alias",
                pointer="/model")
        version = match["version"]
        name = check_name(match["name"])
        alias = check_name(match["alias"], "alias") if match["alias"] else None
        return cls(name, int(version) if version else None, alias)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
