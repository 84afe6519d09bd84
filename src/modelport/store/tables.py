"""Relational schema of the registry (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored naive-UTC, returned aware, so SQLite and PostgreSQL agree."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ModelRow(Base):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Highest version number ever handed out; numbers of deleted versions are not reused."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    flavor: Mapped[str] = mapped_column(String(50))
    framework: Mapped[str] = mapped_column(String(50))
    artifact_key: Mapped[str] = mapped_column(Text)
    files: Mapped[dict[str, Any]] = mapped_column()
    """relative path -> SHA-256 of every artifact file, checked on every load."""
    signature: Mapped[dict[str, Any]] = mapped_column()
    flavor_options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    library_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trusted: Mapped[bool] = mapped_column(default=False)
    stage: Mapped[str] = mapped_column(String(20), default="None")
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StageTransitionRow(Base):
    __tablename__ = "stage_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    from_stage: Mapped[str] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AliasRow(Base):
    __tablename__ = "aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AliasEventRow(Base):
    """Append-only history of every alias move (None = created / deleted)."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(100))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    """An API key: what it may do, never its secret (only a keyed hash of the whole token)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Public part of the token (``mpk_<id>_<secret>``), shown in listings and the audit log."""
    name: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[str] = mapped_column(String(20))
    models: Mapped[list[Any] | None] = mapped_column(nullable=True)
    """Model names the key is restricted to; None = every model."""
    rate_limit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    """This key's inference budget (``100/s:200``); None: the server's default."""
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditRow(Base):
    """One registry change: who, what, before and after, chained to the previous row by hash.

    Append-only: triggers (migration 0003) make the database refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    target: Mapped[str] = mapped_column(String(400), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    client: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The one row naming the newest audit entry: locking it serialises appends, so the hash
    chain never forks, and it shows when entries were cut off the end of the log."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class DeploymentRow(Base):
    """A deployment: the spec its owner applied and the state its rollout is in.

    ``revision`` grows on every change to either; replicas poll it to converge.
    """

    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column()
    """The ModelDeployment document as applied (Kubernetes-style, camelCase keys)."""
    state: Mapped[dict[str, Any]] = mapped_column()
    """Where the rollout stands: phase, step, effective weights, evaluation epoch."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEventRow(Base):
    """One transition of a deployment, by whom and why; kept after the deployment is gone."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(63), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    state: Mapped[dict[str, Any]] = mapped_column()


class RolloutSampleRow(Base):
    """What one replica served for one deployment slot during about a second: summed by the
    rollout controller over its window to check the gates."""

    __tablename__ = "rollout_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(63))
    epoch: Mapped[int] = mapped_column(Integer)
    slot: Mapped[str] = mapped_column(String(63))
    replica: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    window: Mapped[dict[str, Any]] = mapped_column()

    __table_args__ = (Index("ix_rollout_samples_deployment_epoch", "deployment", "epoch"),)


class ReplicaRow(Base):
    """A serving process's heartbeat: what each of its deployments' slots actually serves."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    serving: Mapped[dict[str, Any]] = mapped_column()


class LeaseRow(Base):
    """A named lease: the one process that holds it (until ``expires_at``) does the work."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()


class PredictionRow(Base):
    """One logged request: what went in, what came out, who answered and how fast. Masked
    fields are masked before the row is built; raw values never reach this table."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    protocol: Mapped[str] = mapped_column(String(10))
    deployment: Mapped[str | None] = mapped_column(String(63), nullable=True)
    slot: Mapped[str | None] = mapped_column(String(63), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    unit_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(80), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    rows: Mapped[int] = mapped_column(Integer)
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class ReferenceRow(Base):
    """A version's reference profile: the summaries (JSON) and the sample (bytes), with the
    sample's SHA-256, checked on every read."""

    __tablename__ = "reference_profiles"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[dict[str, Any]] = mapped_column()
    sample: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedbackRow(Base):
    """Ground truth for one row of one logged request (``row`` indexes a multi-row request);
    the newest for a request and row replaces the one before. Feedback by unit id that found
    no logged prediction keeps ``request_id`` empty."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    row: Mapped[int] = mapped_column(Integer, default=0)
    unit_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    truth: Mapped[Any] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_feedback_request_id_row", "request_id", "row", unique=True),)


class JobRow(Base):
    """An asynchronous job: what to run, where it stands, and what came of it. The request
    body and the answer are kept apart (:class:`JobPayloadRow`) so polling reads a small row."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(200))
    """What the submitter named: ``iris``, ``iris@production``, ``iris/3`` or a deployment."""
    name: Mapped[str] = mapped_column(String(200))
    """The model or deployment name in ``reference``: a worker claims jobs for what it serves."""
    format: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str] = mapped_column(String(128))
    rows_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column()
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    result_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    result_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        Index("ix_jobs_state_run_after", "state", "run_after"),
        Index("ix_jobs_expires_at", "expires_at"),
    )


class JobPayloadRow(Base):
    """A job's request body (``part`` = ``input``) or its answer (``result``); deleted with
    the job."""

    __tablename__ = "job_payloads"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[str] = mapped_column(String(8), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ScheduleRow(Base):
    """A batch run repeated on a cron schedule: each time it is due, one batch job is queued."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column()
    """The batch run (``input``, ``output`` with ``{date}`` / ``{time}`` of the run, …)."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime] = mapped_column()
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    """The time the last run was due (not when it was queued: a late one catches up)."""
    last_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_schedules_next_run_at", "next_run_at"),)


class ExperimentRow(Base):
    """An A/B experiment on a deployment: the spec as applied and where it stands."""

    __tablename__ = "experiments"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(63), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column()
    """The Experiment document as applied (Kubernetes-style, camelCase keys)."""
    state: Mapped[dict[str, Any]] = mapped_column()
    """Phase, ramp step, start and stop times, winner."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExperimentEventRow(Base):
    """One change of an experiment, by whom and why; kept after the experiment is gone."""

    __tablename__ = "experiment_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment: Mapped[str] = mapped_column(String(63), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[dict[str, Any]] = mapped_column()


class ExposureRow(Base):
    """A unit's first request served while enrolled in an experiment, and the variant (slot)
    it was assigned: the denominator of every metric and the counts the SRM check tests."""

    __tablename__ = "experiment_exposures"

    experiment: Mapped[str] = mapped_column(String(63), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    variant: Mapped[str] = mapped_column(String(63))
    step: Mapped[int] = mapped_column(Integer)
    """The ramp step the unit was enrolled in (what the SRM check compares per step)."""
    at: Mapped[datetime] = mapped_column()


class MetricEventRow(Base):
    """An outcome a client reported (``POST /v1/events``): a metric's value for a unit, or a
    covariate measured before an experiment."""

    __tablename__ = "metric_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    metric: Mapped[str] = mapped_column(String(63))
    unit_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_metric_events_metric_unit", "metric", "unit_id"),)
