"""Artifact store over fsspec: a local folder by default, S3 (or anything fsspec speaks) by URL.

Every version's files live under their own key (``<model>/<random id>/``). The database row
is the commit point of a registration: files are uploaded first and removed again if the row
cannot be written; :meth:`ArtifactStore.orphans` finds what a killed process left behind.
Every file's SHA-256 is recorded at upload and checked on every fetch.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec

from modelport.errors import ArtifactError, ArtifactIntegrityError

_CHUNK = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[0-9a-f]{32}$")
"""What :meth:`ArtifactStore.new_key` makes; anything else under the root is not ours."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(directory: Path) -> dict[str, str]:
    """relative POSIX path -> SHA-256 of every file under ``directory``."""
    return {
        p.relative_to(directory).as_posix(): sha256_of(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


class ArtifactStore:
    def __init__(self, uri: str, cache_dir: Path, storage_options: Mapping[str, Any] | None = None):
        self.fs, root = fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
        self.root = root.rstrip("/")
        self.is_local = "file" in _protocols(self.fs)
        self._cache_dir = cache_dir
        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)

    def new_key(self, model_name: str) -> str:
        return f"{model_name}/{uuid.uuid4().hex}"

    def uri(self, key: str) -> str:
        return self.fs.unstrip_protocol(f"{self.root}/{key}")  # type: ignore[no-any-return]

    def put_dir(self, local_dir: Path, key: str) -> dict[str, str]:
        """Upload every file of ``local_dir`` under ``key``; return their hashes."""
        files = hash_tree(local_dir)
        target = f"{self.root}/{key}"
        try:
            for relative in files:
                self.fs.makedirs(
                    f"{target}/{Path(relative).parent.as_posix()}".rstrip("/."), exist_ok=True
                )
                self.fs.put_file(str(local_dir / relative), f"{target}/{relative}")
        except OSError as exc:
            with suppress(Exception):  # best effort; orphans() finds whatever is left
                self.delete(key)
            raise ArtifactError(f"could not store artifact {key}: {exc}") from exc
        return files

    def fetch(self, key: str, files: Mapping[str, str]) -> Path:
        """A local folder holding ``key``'s files, each verified against its recorded hash."""
        if self.is_local:
            directory = Path(f"{self.root}/{key}")
        else:
            directory = self._cache_dir / key
            self._download(key, files, directory)
        for relative, expected in files.items():
            path = directory / relative
            if not path.is_file():
                raise ArtifactIntegrityError(f"artifact file {relative!r} of {key} is missing")
            actual = sha256_of(path)
            if actual != expected:
                raise ArtifactIntegrityError(
                    f"artifact file {relative!r} of {key} has SHA-256 {actual[:12]}…, "
                    f"expected {expected[:12]}…; it was modified after registration"
                )
        return directory

    def _download(self, key: str, files: Mapping[str, str], directory: Path) -> None:
        missing = [
            r
            for r, h in files.items()
            if not (directory / r).is_file() or sha256_of(directory / r) != h
        ]
        for relative in missing:
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            # unique per process and call: two workers may fetch the same version at once
            partial = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
            try:
                self.fs.get_file(f"{self.root}/{key}/{relative}", str(partial))
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise ArtifactIntegrityError(
                    f"artifact file {relative!r} of {key} cannot be read: {exc}"
                ) from exc
            partial.replace(path)

    def delete(self, key: str) -> None:
        target = f"{self.root}/{key}"
        self.fs.invalidate_cache(target)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)
        cached = self._cache_dir / key
        if cached.exists():
            shutil.rmtree(cached, ignore_errors=True)

    def keys(self) -> Iterator[tuple[str, datetime | None]]:
        """Every ``<model>/<id>`` key in the store with its modification time, if known.

        Only names :meth:`new_key` could have made are listed, so whatever else shares the
        root (a bucket used for other data too) is never mistaken for an orphan.
        """
        # Other processes upload too: listings cached by this filesystem object are stale.
        self.fs.invalidate_cache(self.root)
        if not self.fs.exists(self.root):
            return
        for model_dir in self.fs.ls(self.root, detail=True, refresh=True):
            if model_dir["type"] != "directory":
                continue
            for key_dir in self.fs.ls(model_dir["name"], detail=True, refresh=True):
                key = key_dir["name"].rstrip("/")[len(self.root) + 1 :]
                if key_dir["type"] == "directory" and _KEY.match(key):
                    yield key, self._modified(key_dir["name"])

    def orphans(self, referenced: set[str], older_than: timedelta) -> list[str]:
        """Keys no version row references that are older than ``older_than``."""
        cutoff = datetime.now(UTC) - older_than
        return [
            key
            for key, modified in self.keys()
            if key not in referenced and (modified is None or modified < cutoff)
        ]

    def _modified(self, path: str) -> datetime | None:
        try:
            stamp = self.fs.modified(path)
        except (OSError, NotImplementedError, FileNotFoundError, IsADirectoryError):
            files = self.fs.find(path, detail=True)
            stamps = [i.get("LastModified") for i in files.values() if i.get("LastModified")]
            return max(stamps) if stamps else None
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
