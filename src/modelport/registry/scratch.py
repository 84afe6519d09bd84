"""Scratch folders for registrations, under the modelport home rather than the system temp dir.

A registration saves and verifies its files in a scratch folder that it removes when it ends;
a process killed meanwhile (SIGKILL, OOM) cannot, so the folder stays. Kept under
``<home>/scratch/`` such folders are found by ``Registry.collect_garbage`` (``modelport gc``),
which removes those older than its threshold.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

SCRATCH_DIR = "scratch"
"""The folder under the modelport home that holds every scratch folder."""


@contextmanager
def scratch_folder(root: Path | None) -> Iterator[Path]:
    """A new empty folder under ``root``, removed on exit; in the system temp dir when the
    caller knows no modelport home (``root`` is None)."""
    if root is None:
        with tempfile.TemporaryDirectory(prefix="modelport-scratch-") as temporary:
            yield Path(temporary)
        return
    root.mkdir(parents=True, exist_ok=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path, older_than: timedelta) -> list[str]:
    """Delete the scratch folders under ``root`` in which nothing changed for ``older_than``;
    return them as ``scratch/<id>``."""
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    removed = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and _last_change(folder) <= cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(f"{SCRATCH_DIR}/{folder.name}")
    return removed


def _last_change(folder: Path) -> float:
    """The newest modification time in ``folder``: a slow save still writing is not stale."""
    newest = folder.stat().st_mtime
    for path in folder.rglob("*"):
        try:
            newest = max(newest, path.lstat().st_mtime)
        except FileNotFoundError:
            continue  # removed while we looked
    return newest
