"""The model registry: models, numbered versions, aliases and stages over the store.

A registration is all-or-nothing: the model's files are saved and verified in a scratch
folder, uploaded under a fresh key, and only then is the version row written; if the row
cannot be written the upload is deleted. Version numbers come from a per-model counter
incremented inside the inserting transaction: concurrent registrations queue on the model
row, a failed one gives its number back, and a deleted version's number is never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from modelport.config import Settings
from modelport.errors import (
    AliasNotFoundError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    ModelLoadError,
    ModelNotFoundError,
    ModelportError,
    ModelVersionNotFoundError,
)
from modelport.registry.address import (
    MAX_VERSION,
    ModelAddress,
    check_name,
    is_reserved_alias,
)
from modelport.registry.audit import Actor, AuditLog, append
from modelport.registry.metadata import json_field
from modelport.registry.preparation import INPUT_EXAMPLE, PreparedModel, read_example
from modelport.registry.records import (
    AliasEvent,
    ModelRecord,
    Stage,
    StageTransition,
    VersionRecord,
)
from modelport.registry.scratch import SCRATCH_DIR, remove_stale
from modelport.runtimes.base import (
    LoadRequest,
    Runtime,
    call_model,
    flavor_named,
    load_runtime,
)
from modelport.runtimes.batch import Batch
from modelport.runtimes.signature import Signature
from modelport.store.artifacts import ArtifactStore
from modelport.store.db import create_db_engine
from modelport.store.tables import (
    AliasEventRow,
    AliasRow,
    ModelRow,
    StageTransitionRow,
    VersionRow,
    utcnow,
)
from modelport.store.unit_of_work import Database

log = logging.getLogger("modelport.store")


class Registry:
    def __init__(
        self, engine: Engine, artifacts: ArtifactStore, scratch_dir: Path | None = None
    ) -> None:
        self.database = Database(engine)
        self.audit = AuditLog(self.database)
        self.artifacts = artifacts
        self.scratch_dir = scratch_dir
        """Where registrations stage their files (``scratch=`` of ``prepare_object`` /
        ``prepare_file``), so that :meth:`collect_garbage` finds what a killed one left."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        uri = settings.resolved_artifact_uri
        store = ArtifactStore(uri, settings.cache_dir, settings.storage_options(uri))
        engine = create_db_engine(
            settings.resolved_database_url, timeout_s=settings.db_timeout_s, migrate=False
        )
        return cls(engine, store, settings.home.resolve() / SCRATCH_DIR)

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def close(self) -> None:
        self.database.close()

    # -- models ---------------------------------------------------------------------------

    def list_models(self) -> list[ModelRecord]:
        with self.database.read() as s:
            rows = s.scalars(select(ModelRow).order_by(ModelRow.name)).all()
            return [self._model_record(s, row) for row in rows]

    def get_model(self, name: str) -> ModelRecord:
        with self.database.read() as s:
            return self._model_record(s, model_row(s, name))

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> ModelRecord:
        with self.database.write() as s:
            row = model_row(s, name)
            before, after = _described(row, description, tags)
            row.description, row.tags, row.updated_at = (
                after["description"],
                after["tags"],
                utcnow(),
            )
            append(s, actor, "model.update", name, before, after)
            return self._model_record(s, row)

    # -- versions -------------------------------------------------------------------------

    def register(
        self,
        name: str,
        prepared: PreparedModel,
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> VersionRecord:
        """Store a prepared model as the next version of ``name`` (created if new)."""
        check_name(name)
        # Checked before anything is uploaded: these become JSON columns, and a value JSON
        # cannot hold (NaN, an arbitrary object) must be a 422, on SQLite and PostgreSQL alike.
        metadata = {
            field: json_field(field, value)
            for field, value in (
                ("tags", tags),
                ("params", params),
                ("metrics", metrics),
                ("lineage", lineage),
            )
        }
        key = self.artifacts.new_key(name)
        try:
            files = self.artifacts.put_dir(prepared.directory, key)
            return self._insert_version(
                name,
                VersionRow(
                    flavor=prepared.flavor,
                    framework=prepared.saved.framework,
                    artifact_key=key,
                    files=files,
                    signature=prepared.signature.to_dict(),
                    flavor_options=dict(prepared.saved.options),
                    library_versions=dict(prepared.saved.library_versions),
                    trusted=prepared.trusted,
                    description=description,
                    **metadata,
                ),
                actor,
            )
        except BaseException:
            # Best effort: if the store is what failed, collect_garbage() removes the rest
            # later, and the error the caller sees stays the one that mattered.
            with suppress(Exception):
                self.artifacts.delete(key)
            raise

    def _insert_version(self, name: str, row: VersionRow, actor: Actor | None) -> VersionRecord:
        first = [row]

        def insert() -> VersionRecord:
            # a row added to a session that failed cannot be added again: copy it
            attempt = first.pop() if first else _fresh_copy(row)
            with self.database.write() as s:
                model = self._get_or_create_model(s, name)
                # The UPDATE locks the model row until commit, so concurrent registrations
                # queue here; a rollback gives the number back, so numbers stay gap-free.
                number = s.execute(
                    update(ModelRow)
                    .where(ModelRow.id == model.id)
                    .values(last_version=ModelRow.last_version + 1, updated_at=utcnow())
                    .returning(ModelRow.last_version)
                    .execution_options(synchronize_session=False)
                ).scalar_one()
                attempt.model_id, attempt.version = model.id, number
                s.add(attempt)
                s.flush()
                # who registered what, and whether they vouched for it (trusted: pickles run)
                append(s, actor, "model.register", f"{name}/{number}", None, _content(attempt))
                return self._version_record(s, attempt, name)

        return self.database.retrying(
            insert, f"could not allocate a version number for {name!r}; retry"
        )

    def _get_or_create_model(self, s: Session, name: str) -> ModelRow:
        model = s.scalar(select(ModelRow).where(ModelRow.name == name))
        if model is None:
            model = ModelRow(name=name)
            s.add(model)
            s.flush()
        return model

    def list_versions(self, name: str) -> list[VersionRecord]:
        with self.database.read() as s:
            model = model_row(s, name)
            rows = s.scalars(
                select(VersionRow)
                .where(VersionRow.model_id == model.id)
                .order_by(VersionRow.version)
            ).all()
            return [self._version_record(s, row, name) for row in rows]

    def get_version(self, name: str, version: int) -> VersionRecord:
        with self.database.read() as s:
            return self._version_record(s, version_row(s, name, version), name)

    def resolve(self, address: ModelAddress | str) -> VersionRecord:
        """The version an address means now: its number, its alias's target, or the latest."""
        if isinstance(address, str):
            address = ModelAddress.parse(address)
        with self.database.read() as s:
            model = model_row(s, address.name)
            if address.version is not None:
                number = address.version
            elif address.alias is not None:
                number = self._alias_row(s, model, address.alias).version
            else:
                latest = s.scalar(
                    select(func.max(VersionRow.version)).where(VersionRow.model_id == model.id)
                )
                if latest is None:
                    raise ModelVersionNotFoundError(f"model {address.name!r} has no versions")
                number = latest
            return self._version_record(s, version_row(s, address.name, number), address.name)

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> VersionRecord:
        with self.database.write() as s:
            row = version_row(s, name, version)
            before, after = _described(row, description, tags)
            row.description, row.tags = after["description"], after["tags"]
            append(s, actor, "version.update", f"{name}/{version}", before, after)
            return self._version_record(s, row, name)

    def transition_stage(
        self, name: str, version: int, stage: Stage, *, actor: Actor | None = None
    ) -> VersionRecord:
        with self.database.write() as s:
            row = version_row(s, name, version)
            before = {"stage": row.stage}
            if row.stage != stage.value:
                s.add(
                    StageTransitionRow(
                        version_id=row.id, from_stage=row.stage, to_stage=stage.value
                    )
                )
                row.stage = stage.value
            append(s, actor, "version.stage", f"{name}/{version}", before, {"stage": row.stage})
            return self._version_record(s, row, name)

    def stage_history(self, name: str, version: int) -> list[StageTransition]:
        with self.database.read() as s:
            row = version_row(s, name, version)
            events = s.scalars(
                select(StageTransitionRow)
                .where(StageTransitionRow.version_id == row.id)
                .order_by(StageTransitionRow.id)
            ).all()
            return [StageTransition(Stage(e.from_stage), Stage(e.to_stage), e.at) for e in events]

    # -- aliases --------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: Actor | None = None
    ) -> VersionRecord:
        """Point ``alias`` at ``version`` in one transaction, recording the move."""
        check_name(alias, "alias")
        if is_reserved_alias(alias):
            raise InvalidInputError(
                f"{alias!r} is reserved and cannot be an alias", pointer="/alias"
            )
        return self.database.retrying(
            lambda: self._move_alias(name, alias, version, actor),
            f"alias {alias!r} of {name!r} is being moved concurrently; retry",
        )

    def _move_alias(
        self, name: str, alias: str, version: int, actor: Actor | None
    ) -> VersionRecord:
        with self.database.write() as s:
            model = model_row(s, name)
            target = version_row(s, name, version)
            # Locked, so a concurrent move waits and then records the right from_version.
            row = s.get(AliasRow, (model.id, alias), with_for_update=True, populate_existing=True)
            previous = row.version if row is not None else None
            if row is None:
                s.add(AliasRow(model_id=model.id, alias=alias, version=version))
            else:
                row.version, row.updated_at = version, utcnow()
            if previous != version:
                s.add(
                    AliasEventRow(
                        model_id=model.id, alias=alias, from_version=previous, to_version=version
                    )
                )
            s.flush()
            before = {"version": previous} if previous is not None else None
            append(s, actor, "alias.set", f"{name}@{alias}", before, {"version": version})
            return self._version_record(s, target, name)

    def delete_alias(self, name: str, alias: str, *, actor: Actor | None = None) -> None:
        with self.database.write() as s:
            model = model_row(s, name)
            row = self._alias_row(s, model, alias)
            s.add(
                AliasEventRow(
                    model_id=model.id, alias=alias, from_version=row.version, to_version=None
                )
            )
            s.delete(row)
            append(s, actor, "alias.delete", f"{name}@{alias}", {"version": row.version}, None)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        with self.database.read() as s:
            model = model_row(s, name)
            query = select(AliasEventRow).where(AliasEventRow.model_id == model.id)
            if alias is not None:
                query = query.where(AliasEventRow.alias == alias)
            rows = s.scalars(query.order_by(AliasEventRow.id)).all()
            return [AliasEvent(r.alias, r.from_version, r.to_version, r.at) for r in rows]

    # -- loading and housekeeping ---------------------------------------------------------

    def load(self, record: VersionRecord) -> Runtime:
        """Fetch, verify (SHA-256 of every file), load and warm up a version.

        Warming runs the stored input example once, so a version that loads but cannot
        predict fails here, before it takes any traffic.
        """
        runtime, example = self.open(record)
        if example is not None:
            warm_up(record, runtime, example)
        return runtime

    def open(self, record: VersionRecord) -> tuple[Runtime, Batch | None]:
        """Fetch, verify and load a version, not yet warmed; with its stored input example.

        Servers warm the runtime themselves, on the threads that will run its traffic.
        """
        directory = self.artifacts.fetch(record.artifact_key, record.files)
        runtime = load_runtime(
            record.flavor,
            LoadRequest(directory, record.signature, record.flavor_options, record.trusted),
        )
        if not (directory / INPUT_EXAMPLE).is_file():
            return runtime, None
        return runtime, read_example(directory, record.signature)

    def verify(self, record: VersionRecord) -> None:
        """Check that a version could load here, without loading it: every file present with
        its recorded SHA-256, and its flavor installed. Cheap enough to run before an alias
        moves, so that servers following the alias are never pointed at a broken version.
        """
        try:
            flavor_named(record.flavor)
        except ConfigurationError as exc:
            raise ModelLoadError(f"{record.address} cannot load here: {exc.detail}") from exc
        self.artifacts.fetch(record.artifact_key, record.files)

    def artifact_dir(self, record: VersionRecord) -> Path:
        return self.artifacts.fetch(record.artifact_key, record.files)

    def collect_garbage(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Delete what registrations that died left behind: artifacts without a version row,
        and scratch folders (``scratch/<id>``), once nothing touched them for ``older_than``."""
        with self.database.read() as s:
            referenced = set(s.scalars(select(VersionRow.artifact_key)).all())
        orphans = self.artifacts.orphans(referenced, older_than)
        for key in orphans:
            self.artifacts.delete(key)
        if self.scratch_dir is not None:
            orphans += remove_stale(self.scratch_dir, older_than)
        return orphans

    def delete_version(self, name: str, version: int, *, actor: Actor | None = None) -> None:
        """Remove a version no alias points at, with its files."""
        with self.database.write() as s:
            row = version_row(s, name, version)
            pointing = s.scalars(
                select(AliasRow.alias)
                .where(AliasRow.model_id == row.model_id, AliasRow.version == version)
                .order_by(AliasRow.alias)
            ).all()
            if pointing:
                raise ConflictError(
                    f"{name}/{version} is the target of alias(es) "
                    f"{', '.join(pointing)}; move them first"
                )
            key = row.artifact_key
            s.execute(delete(StageTransitionRow).where(StageTransitionRow.version_id == row.id))
            s.delete(row)
            before = {**_content(row), "stage": row.stage}
            append(s, actor, "version.delete", f"{name}/{version}", before, None)
        self.artifacts.delete(key)

    # -- row helpers ----------------------------------------------------------------------

    def _alias_row(self, s: Session, model: ModelRow, alias: str) -> AliasRow:
        row = s.get(AliasRow, (model.id, alias))
        if row is None:
            raise AliasNotFoundError(f"model {model.name!r} has no alias {alias!r}")
        return row

    def _model_record(self, s: Session, row: ModelRow) -> ModelRecord:
        latest = s.scalar(select(func.max(VersionRow.version)).where(VersionRow.model_id == row.id))
        aliases = {
            alias: version
            for alias, version in s.execute(
                select(AliasRow.alias, AliasRow.version).where(AliasRow.model_id == row.id)
            )
        }
        return ModelRecord(
            row.name, row.description, row.tags, row.created_at, row.updated_at, latest, aliases
        )

    def _version_record(self, s: Session, row: VersionRow, name: str) -> VersionRecord:
        aliases = tuple(
            s.scalars(
                select(AliasRow.alias)
                .where(AliasRow.model_id == row.model_id, AliasRow.version == row.version)
                .order_by(AliasRow.alias)
            ).all()
        )
        return VersionRecord(
            name=name,
            version=row.version,
            flavor=row.flavor,
            framework=row.framework,
            artifact_key=row.artifact_key,
            artifact_uri=self.artifacts.uri(row.artifact_key),
            files=row.files,
            signature=Signature.from_dict(row.signature),
            flavor_options=row.flavor_options,
            library_versions=row.library_versions,
            trusted=row.trusted,
            stage=Stage(row.stage),
            description=row.description,
            tags=row.tags,
            params=row.params,
            metrics=row.metrics,
            lineage=row.lineage,
            created_at=row.created_at,
            aliases=aliases,
        )


def model_row(s: Session, name: str) -> ModelRow:
    row = s.scalar(select(ModelRow).where(ModelRow.name == name))
    if row is None:
        raise ModelNotFoundError(f"model {name!r} is not registered")
    return row


def version_row(s: Session, name: str, version: int) -> VersionRow:
    row = None
    if 0 < version <= MAX_VERSION:  # larger numbers overflow the column's type in the query
        row = s.scalar(
            select(VersionRow)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(ModelRow.name == name, VersionRow.version == version)
        )
    if row is None:
        model_row(s, name)
        raise ModelVersionNotFoundError(f"model {name!r} has no version {version}")
    return row


def warm_up(record: VersionRecord, runtime: Runtime, example: Batch) -> None:
    """Run the input example once; a version that cannot predict it never takes traffic."""
    try:
        call_model(runtime, example)
    except ModelportError as exc:
        raise ModelLoadError(
            f"{record.address} failed its warm-up prediction: {exc.detail}"
        ) from exc


def _described(
    row: ModelRow | VersionRow, description: str | None, tags: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Description and tags of ``row`` before and after an update (tags merge into the old)."""
    before = {"description": row.description, "tags": dict(row.tags)}
    after = {
        "description": before["description"] if description is None else description,
        "tags": before["tags"] if tags is None else {**row.tags, **json_field("tags", tags)},
    }
    return before, after


def _content(row: VersionRow) -> dict[str, Any]:
    """What a version is, for the audit log: the files by hash and whether they were trusted."""
    return {
        "version": row.version,
        "flavor": row.flavor,
        "trusted": row.trusted,
        "files": dict(row.files),
    }


def _fresh_copy(row: VersionRow) -> VersionRow:
    """A transient copy of a row whose session rolled back."""
    columns = {
        c.key: getattr(row, c.key)
        for c in VersionRow.__table__.columns
        if c.key not in ("id", "model_id", "version", "created_at")
    }
    return VersionRow(**columns)
