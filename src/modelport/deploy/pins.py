"""Pinned requirements for an image: modelport's dependencies at the versions installed here.

An image should run what was tested, not whatever the index holds on the day it is built, so
``requirements.lock`` names every distribution modelport needs (its extras included, and
theirs, transitively) as ``name==version``, read from this environment with
:mod:`importlib.metadata`. Markers are evaluated for this interpreter: build the image on the
Python minor version and platform it runs (the default base image is CPython 3.11 on Linux).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

# packaging is installed with skops, a base dependency (it should be declared directly)
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelport.errors import InvalidInputError

PACKAGE = "modelport"
# distributions that come with the interpreter's venv or only build others: never pinned
_TOOLING = {"pip", "setuptools", "wheel"}


def extras_offered() -> list[str]:
    """The extras modelport declares (postgres, redis, celery…)."""
    return sorted(metadata.metadata(PACKAGE).get_all("Provides-Extra") or [])


def modelport_version() -> str:
    return metadata.version(PACKAGE)


def pinned_requirements(extras: Iterable[str] = ()) -> list[str]:
    """``name==version`` of every distribution modelport and ``extras`` need, sorted."""
    wanted = sorted(set(extras))
    unknown = sorted(set(wanted) - set(extras_offered()))
    if unknown:
        raise InvalidInputError(
            f"modelport has no extra {', '.join(unknown)}; it offers {', '.join(extras_offered())}",
            pointer="/extras",
        )
    pins: dict[str, str] = {}
    _walk(PACKAGE, wanted, pins, set(), top=True)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _walk(
    name: str, extras: list[str], pins: dict[str, str], seen: set[str], *, top: bool = False
) -> None:
    """Add what ``name`` with ``extras`` requires, and what that requires, to ``pins``."""
    for requirement in _requirements(name, extras):
        key = canonicalize_name(requirement.name)
        if key in _TOOLING or key == PACKAGE:
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError as exc:
            wanted = f"{PACKAGE}[{','.join(extras)}]" if top and extras else requirement.name
            raise InvalidInputError(
                f"{requirement.name} ({requirement}) is not installed here, so it cannot be "
                f"pinned: install {wanted} in this environment first"
            ) from exc
        # one walk per distribution and set of extras (uvicorn and uvicorn[standard] differ)
        walked = f"{key}[{','.join(sorted(requirement.extras))}]"
        pins[key] = version
        if walked not in seen:
            seen.add(walked)
            _walk(requirement.name, sorted(requirement.extras), pins, seen)


def _requirements(name: str, extras: list[str]) -> list[Requirement]:
    """The requirements of installed ``name`` that apply here with ``extras`` asked for."""
    found = []
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker is None:
            found.append(requirement)
            continue
        environment = {k: str(v) for k, v in default_environment().items()}
        for extra in ["", *extras]:
            environment["extra"] = extra
            if requirement.marker.evaluate(environment):
                found.append(requirement)
                break
    return found
