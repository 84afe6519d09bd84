"""Reference data of a version, stored beside it: what live traffic is compared with.

The registry keeps it opaque: a JSON summary and a sample as bytes (the monitoring layer
builds and reads both). It lives in the database, one row per version, so every replica sees
the same one and attaching it is one transaction with its audit entry. The sample's SHA-256
is recorded and checked on every read, as artifacts' are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from modelport.errors import ArtifactIntegrityError
from modelport.registry.audit import Actor, append
from modelport.registry.metadata import json_field
from modelport.registry.registry import Registry, version_row
from modelport.store.tables import ReferenceRow


@dataclass(frozen=True, slots=True)
class StoredReference:
    summary: Mapping[str, Any]
    sample: bytes
    created_at: datetime


class ReferenceStore:
    def __init__(self, registry: Registry) -> None:
        self._db = registry.database

    def attach(
        self,
        name: str,
        version: int,
        summary: Mapping[str, Any],
        sample: bytes,
        *,
        actor: Actor | None = None,
    ) -> None:
        """Store (or replace) the reference of ``name``/``version``."""
        summary = json_field("reference", summary)
        digest = hashlib.sha256(sample).hexdigest()
        with self._db.write() as s:
            row = version_row(s, name, version)
            existing = s.get(ReferenceRow, row.id)
            before = None if existing is None else _described(existing.summary, existing.sha256)
            if existing is not None:
                s.delete(existing)
                s.flush()
            s.add(ReferenceRow(version_id=row.id, summary=summary, sample=sample, sha256=digest))
            s.flush()
            after = _described(summary, digest)
            append(s, actor, "version.reference", f"{name}/{version}", before, after)

    def get(self, name: str, version: int) -> StoredReference | None:
        """The reference, its sample checked against the recorded hash; None if it has none."""
        with self._db.read() as s:
            row = version_row(s, name, version)
            stored = s.scalar(select(ReferenceRow).where(ReferenceRow.version_id == row.id))
            if stored is None:
                return None
            if hashlib.sha256(stored.sample).hexdigest() != stored.sha256:
                raise ArtifactIntegrityError(
                    f"the reference sample of {name}/{version} does not match its SHA-256 "
                    f"{stored.sha256[:12]}…; it was changed outside modelport"
                )
            return StoredReference(stored.summary, stored.sample, stored.created_at)


def _described(summary: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """For the audit log: how big the reference is and which sample, not the data itself."""
    return {"rows": summary.get("rows"), "sample_sha256": digest}
