"""Read-only views of registry rows, safe to hand to any layer above."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelport.runtimes.signature import Signature


class Stage(StrEnum):
    """MLflow-style lifecycle states, kept as history on each version."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


@dataclass(frozen=True, slots=True)
class ModelRecord:
    name: str
    description: str
    tags: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    aliases: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class VersionRecord:
    name: str
    version: int
    flavor: str
    framework: str
    artifact_key: str
    artifact_uri: str
    files: Mapping[str, str]
    signature: Signature
    flavor_options: Mapping[str, Any]
    library_versions: Mapping[str, str]
    trusted: bool
    stage: Stage
    description: str
    tags: Mapping[str, Any]
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    lineage: Mapping[str, Any]
    created_at: datetime
    aliases: tuple[str, ...] = field(default=())

    @property
    def address(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "flavor": self.flavor,
            "framework": self.framework,
            "artifact_uri": self.artifact_uri,
            "files": dict(self.files),
            "signature": self.signature.to_dict(),
            "library_versions": dict(self.library_versions),
            "trusted": self.trusted,
            "stage": self.stage.value,
            "description": self.description,
            "tags": dict(self.tags),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "lineage": dict(self.lineage),
            "created_at": self.created_at.isoformat(),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class AliasEvent:
    alias: str
    from_version: int | None
    to_version: int | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StageTransition:
    from_stage: Stage
    to_stage: Stage
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_stage": self.from_stage.value,
            "to_stage": self.to_stage.value,
            "at": self.at.isoformat(),
        }
