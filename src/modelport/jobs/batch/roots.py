"""Where batch jobs submitted over HTTP may read and write (``MODELPORT_BATCH_ROOTS``): a
caller of the API must not make the server read its own files or overwrite another folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlsplit

from modelport.errors import ForbiddenError


def check_within(roots: Sequence[str], location: str, pointer: str) -> None:
    if not roots:
        raise ForbiddenError(
            "this server takes no batch jobs: MODELPORT_BATCH_ROOTS names no folder they may use"
        )
    if not any(_within(root, location) for root in roots):
        raise ForbiddenError(
            f"{pointer.strip('/')} {location!r} is outside the folders batch jobs may use"
        )


def _within(root: str, location: str) -> bool:
    root_scheme, where_scheme = urlsplit(root).scheme, urlsplit(location).scheme
    if _local(root_scheme) and _local(where_scheme):
        base = os.path.realpath(_path(root))
        return os.path.commonpath([base, os.path.realpath(_path(location))]) == base
    if root_scheme != where_scheme or ".." in location.split("/"):
        return False
    base = root.rstrip("/") + "/"
    return location == root.rstrip("/") or location.startswith(base)


def _local(scheme: str) -> bool:
    return scheme in ("", "file")


def _path(location: str) -> str:
    return location.removeprefix("file://")
