"""Settings: the only module that reads the environment.

Values come from ``MODELPORT_*`` environment variables, then an optional ``modelport.yaml``
in the working directory (or the file named by ``MODELPORT_CONFIG``), then defaults. The
object is frozen and passed explicitly to whoever needs it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from modelport.errors import ConfigurationError


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class AuthMode(StrEnum):
    AUTO = "auto"
    REQUIRED = "required"
    OFF = "off"


class Masking(StrEnum):
    """What the prediction log stores for a personal field instead of its value."""

    DROP = "drop"
    HASH = "hash"
    MASK = "mask"


class QualityMetric(StrEnum):
    """A quality figure a limit can bound (see :mod:`modelport.monitoring.quality`)."""

    ACCURACY = "accuracy"
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    ROC_AUC = "roc_auc"
    LOG_LOSS = "log_loss"
    MAE = "mae"
    RMSE = "rmse"
    R2 = "r2"

    @property
    def lower_is_better(self) -> bool:
        """Losses and errors have a ceiling; scores have a floor."""
        return self in (QualityMetric.LOG_LOSS, QualityMetric.MAE, QualityMetric.RMSE)


class ModelOptions(BaseModel):
    """Serving options of one model; unset fields fall back to the server-wide settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_max_size: int | None = Field(None, ge=1)
    batch_max_wait_ms: float | None = Field(None, ge=0)
    queue_max_rows: int | None = Field(None, ge=1)
    inline_max_ms: float | None = Field(None, ge=0)
    cache: bool = Field(False, description="Answer repeated inputs from the response cache.")
    public: bool = Field(
        False, description="Inference and metadata without an API key (demos); never the API."
    )
    rate_limit: str | None = Field(
        None, description="Budget of all callers of this model together, e.g. 500/s:1000."
    )


class Settings(BaseSettings):
    """Effective configuration of one modelport process."""

    model_config = SettingsConfigDict(env_prefix="MODELPORT_", frozen=True, extra="ignore")

    home: Path = Field(
        Path(".modelport"),
        description="Folder for the embedded SQLite database, local artifacts and the load cache.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the metadata database; default sqlite under `home`. "
        "Use postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    db_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Bound on waiting for the metadata database: connecting "
        "(PostgreSQL connect_timeout, at least 2 s), one statement (statement_timeout), a "
        "pooled connection, and SQLite's busy timeout; past it a call fails with 503.",
    )
    artifact_uri: str | None = Field(
        None,
        description="fsspec URL of the artifact store (a folder, or s3://bucket/prefix); "
        "default `home`/artifacts.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, moto, Ceph)."
    )
    host: str = Field("127.0.0.1", description="Address `modelport serve` binds to.")
    port: int = Field(8000, description="Port `modelport serve` listens on.")
    grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the gRPC Open Inference Protocol V2 "
        "service on `host` (`serve --grpc-port`); unset: HTTP only.",
    )
    workers: int = Field(
        0,
        ge=0,
        description="Server processes sharing the port, metrics aggregated across "
        "them; 0 = one per CPU this process may use (measured best on 2 cores: bench/README).",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Models `modelport serve` hosts (name, name/3, "
        "name@alias); the CLI arguments set it.",
    )
    deployments: list[str] = Field(
        default_factory=list,
        description="Deployments `modelport serve` hosts (`--deployment NAME`).",
    )
    all_deployments: bool = Field(
        False,
        description="Serve every deployment in the registry, including ones applied later "
        "(what `serve` does when given neither a model nor --deployment).",
    )
    deployment_poll_s: float = Field(
        1.0,
        gt=0,
        description="How often a server checks the database for deployment changes: replicas "
        "converge on a change within about this time.",
    )
    metrics_dir: Path | None = Field(
        None,
        description="Folder where worker processes share metrics; set by `serve` when workers > 1.",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        description="Largest request body accepted (except model uploads: max_upload_bytes); "
        "larger bodies get 413.",
    )
    max_upload_bytes: int = Field(
        2 * 1024**3,
        description="Largest model upload (POST /api/models/{name}/versions), streamed to disk; "
        "larger uploads get 413. Also the largest file preparing a trusted upload may write.",
    )
    trusted_memory_bytes: int = Field(
        2 * 1024**3,
        description="Address space of the child process that loads a trusted upload (pickle, "
        "joblib) and runs its sample; past it the upload gets 422.",
    )
    trusted_cpu_s: int = Field(
        60, ge=1, description="CPU seconds that child process may use; past them: 422."
    )
    trusted_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Wall-clock time that child process may take before it is killed: 422.",
    )
    reload_interval_s: float = Field(
        2.0, description="How often the server checks the registry for moved aliases."
    )
    drain_timeout_s: float = Field(
        30.0, description="On SIGTERM, how long in-flight requests may take to finish."
    )
    default_model: str | None = Field(
        None, description="Model that answers `/invocations` when several are served."
    )
    inference_threads: int = Field(
        2, description="Threads running model code in one server process (off the event loop)."
    )
    model_threads: int = Field(
        1, description="BLAS/OpenMP threads per model call; 1 avoids oversubscribing cores."
    )
    batch_max_size: int = Field(
        64, description="Most rows one merged model call may carry (adaptive batching)."
    )
    batch_max_wait_ms: float = Field(
        0.0,
        description="How long a batch that is already forming may wait for more rows; "
        "a lone request never waits.",
    )
    queue_max_rows: int = Field(
        4096, description="Rows that may wait per model version; past it requests get 503."
    )
    inline_max_ms: float = Field(
        5.0,
        ge=0,
        description="A batch that this model is known to answer faster than this runs on "
        "the event loop instead of a model thread (no hand-off, no lock contention); "
        "0 sends every call to a thread.",
    )
    cache_url: SecretStr | None = Field(
        None,
        description="Redis URL of the response cache (redis://host:6379/0), shared by "
        "replicas; default an in-process LRU.",
    )
    cache_max_bytes: int = Field(
        64 * 1024 * 1024, description="Size bound of the in-process response cache."
    )
    cache_ttl_s: int = Field(3600, description="Lifetime of a response cached in Redis.")
    model_options: dict[str, ModelOptions] = Field(
        default_factory=dict,
        description="Per-model overrides, e.g. "
        '{"iris": {"batch_max_size": 256, "batch_max_wait_ms": 2, "cache": true}} '
        "(JSON in the environment).",
    )
    log_level: str = Field("info", description="Log level of the server (debug, info, warning).")
    log_format: LogFormat = Field(
        LogFormat.TEXT,
        description="Server log lines as `text` (time, level, logger, request "
        "id, message) or `json` (one object per line, for log shippers; with `trace_id` and "
        "`span_id` in a W3C trace).",
    )
    access_log: bool = Field(
        False, description="Log one line per HTTP request (method, path, status, time)."
    )
    wait_for_models: bool = Field(
        False,
        description="Start serving even when a model cannot be loaded yet, and keep "
        "trying; by default `serve` exits with the reason.",
    )
    allow_remote_admin: bool = Field(
        False,
        description="With authentication off, let HTTP clients change the registry "
        "(upload versions, move aliases and stages); with it on, a key's scope decides. "
        "Trusted (pickle) uploads need an admin key, so they are refused without keys.",
    )
    auth: AuthMode = Field(
        AuthMode.AUTO,
        description="API keys: `auto` (required when the server binds beyond loopback), "
        "`required`, or `off` (beyond loopback only with `serve --insecure`).",
    )
    auth_secret: SecretStr | None = Field(
        None,
        description="Server secret API keys are hashed under (32+ characters); default: "
        "the file `auth_secret_file`, else `home`/auth-secret, created on first use. "
        "Replicas sharing a database need the same one.",
    )
    auth_secret_file: Path | None = Field(
        None, description="File holding the server secret (e.g. a mounted Kubernetes Secret)."
    )
    auth_refresh_s: float = Field(
        5.0,
        gt=0,
        description="How often a server re-reads the key table: a revoked key stops "
        "working everywhere within this time.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers to (`*`: any); default: the loopback "
        "names when bound to loopback (a defence against DNS rebinding), else any.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (https://app.example.com) whose pages may call the server "
        "(CORS) and change state; default none: CORS is off.",
    )
    request_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest an inference request may take, body upload included; past it "
        "the answer is 504 (a model call already running finishes in the background).",
    )
    ssl_certfile: Path | None = Field(
        None, description="TLS certificate (PEM) for HTTP and gRPC (`serve --ssl-certfile`)."
    )
    ssl_keyfile: Path | None = Field(
        None, description="TLS private key (PEM) (`serve --ssl-keyfile`)."
    )
    key_rate_limit: str | None = Field(
        None,
        description="Inference budget of each API key unless the key has its own, as "
        "`<count>/<s|m|h>[:<burst>]` (100/s:200); default: none. Models take "
        "`rate_limit` in model_options.",
    )
    rate_limit_url: SecretStr | None = Field(
        None,
        description="Redis URL where all workers and replicas share rate-limit budgets; "
        "default: in memory, per worker process.",
    )
    rate_limit_fail_closed: bool = Field(
        False,
        description="Refuse requests (429) while the rate-limit Redis is unreachable; by "
        "default they are let through (one log line per outage).",
    )
    prediction_log: bool = Field(
        False,
        description="Write every answered request (inputs, outputs, who answered, latency) to "
        "the prediction log table, in batches off the request's path.",
    )
    prediction_log_sample_rate: float = Field(
        1.0, ge=0, le=1, description="Share of requests the prediction log keeps."
    )
    prediction_log_sampling: dict[str, float] = Field(
        default_factory=dict,
        description="Share kept per deployment or model name (JSON object, e.g. "
        '`{"fraud": 0.1}`); others keep `prediction_log_sample_rate`.',
    )
    prediction_log_buffer: int = Field(
        10_000,
        ge=1,
        description="Requests the prediction log may hold in memory before writing; past it "
        "new ones are dropped and counted. A crash loses at most this many.",
    )
    prediction_log_flush_s: float = Field(
        0.5,
        ge=0,
        description="How long the prediction log gathers requests before a write (fewer, "
        "larger transactions).",
    )
    prediction_log_parquet_uri: str | None = Field(
        None,
        description="Also write the prediction log as Parquet files under this fsspec URL (a "
        "folder, or s3://bucket/prefix), one `date=YYYY-MM-DD` folder per day; needs the "
        "parquet extra.",
    )
    prediction_log_parquet_rows: int = Field(
        50_000,
        ge=1,
        description="Rows a Parquet file of the prediction log gathers before it is written "
        "(a crash loses at most these, from the files only).",
    )
    prediction_log_parquet_interval_s: float = Field(
        300.0,
        gt=0,
        description="A Parquet file of the prediction log is written at least this often.",
    )
    prediction_log_retention_days: float = Field(
        30.0, gt=0, description="Logged predictions older than this are deleted (hourly)."
    )
    reference_sample_rows: int = Field(
        10_000,
        ge=1,
        description="Rows of reference data a version keeps as its sample (KS and Wasserstein "
        "need raw values); beyond it a seeded random sample. The summaries count every row.",
    )
    drift_interval_s: float = Field(
        60.0,
        ge=0,
        description="How often a server recomputes drift of every served version against its "
        "reference profile, from the prediction log (one process computes: a lease); 0: never.",
    )
    drift_window_s: float = Field(
        3600.0, gt=0, description="The window of logged traffic drift compares, in seconds."
    )
    drift_min_rows: int = Field(
        100, ge=1, description="Fewer logged rows in a window than this: no drift verdict."
    )
    drift_max_rows: int = Field(
        1_000_000,
        ge=1,
        description="The newest logged requests a drift window reads at most (bounds memory).",
    )
    quality_interval_s: float = Field(
        60.0,
        ge=0,
        description="How often a server recomputes model quality of every served version from "
        "feedback joined to the prediction log (one process computes: a lease); 0: never.",
    )
    quality_window_s: float = Field(
        86_400.0,
        gt=0,
        description="The window of logged answers quality is computed over (ground truth "
        "often arrives late), in seconds.",
    )
    quality_max_rows: int = Field(
        1_000_000, ge=1, description="Labelled rows a quality window reads at most."
    )
    quality_min_rows: int = Field(
        100,
        ge=1,
        description="Fewer labelled rows in a window than this: no verdict on `quality_limits` "
        "(the gauges still show the figures).",
    )
    quality_limits: dict[QualityMetric, float] = Field(
        default_factory=dict,
        description="Bounds a version's quality must keep, by metric: a floor for accuracy, "
        "precision, recall, f1, roc_auc and r2, a ceiling for log_loss, mae and rmse (JSON "
        'object, e.g. `{"accuracy": 0.9, "rmse": 3.5}`); a breach goes to `alert_webhook_url`.',
    )
    alert_webhook_url: str | None = Field(
        None,
        description="URL that gets a JSON POST when a version starts drifting or its quality "
        "passes a `quality_limits` bound (again after `alert_webhook_repeat_s` if it goes on), "
        "and when it recovers.",
    )
    alert_webhook_repeat_s: float = Field(
        86_400.0,
        gt=0,
        description="How often a drift or quality breach that goes on is "
        "announced again, in seconds.",
    )
    job_workers: int = Field(
        1,
        ge=0,
        description="Jobs each server process runs at once, for the models it serves; 0: "
        "this server only accepts jobs and leaves running them to other processes.",
    )
    job_poll_s: float = Field(
        1.0,
        gt=0,
        description="How often an idle job worker looks for queued jobs (a job submitted "
        "to the same process starts at once).",
    )
    job_lease_s: float = Field(
        30.0,
        gt=0,
        description="A running job whose worker has not reported for this long (killed, cut "
        "off) is queued again; workers report every second (or every third of it, if shorter).",
    )
    job_piece_rows: int = Field(
        1024,
        ge=1,
        description="Rows a job sends to the model at a time: online requests queue between "
        "pieces, not behind the whole job.",
    )
    job_max_attempts: int = Field(
        3,
        ge=1,
        description="Runs a job gets when it fails for a passing reason (database or model "
        "not available, its worker lost); a model error fails it at once.",
    )
    job_result_ttl_s: float = Field(
        86_400.0,
        gt=0,
        description="How long a finished job, its answer or error, is kept, in seconds.",
    )
    batch_roots: list[str] = Field(
        default_factory=list,
        description="Folders and URL prefixes (/data/scoring, s3://bucket/scoring) that batch "
        "jobs submitted over HTTP may read and write; default none: the server refuses batch "
        "jobs (`modelport batch` on the command line is not limited).",
    )
    job_broker_url: SecretStr | None = Field(
        None,
        description="Celery broker for jobs (redis://host:6379/0, amqp://user:pass@host//): "
        "servers hand every job to the `modelport worker` processes of its model instead of "
        "running it themselves. Unset: jobs run inside the server processes.",
    )
    job_queue_prefix: str = Field(
        "modelport",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Prefix of the broker queue of each model (PREFIX.NAME), so that several "
        "installations can share one broker.",
    )
    public_url: str | None = Field(
        None,
        description="Where clients reach this server (https://models.example.com): links in "
        "webhook messages are absolute with it, relative without.",
    )
    pii_fields: dict[str, Masking] = Field(
        default_factory=dict,
        description="Input or output fields the prediction log must not store as sent: "
        '`drop`, `hash` (HMAC-SHA256 under `pii_salt`) or `mask` (JSON object, e.g. `{"email": '
        '"hash", "ssn": "drop"}`).',
    )
    pii_salt: SecretStr | None = Field(
        None,
        description="Secret that `hash` fields are hashed under; default: derived from the "
        "server secret (auth_secret), so replicas sharing it hash alike.",
    )
    api_key: SecretStr | None = Field(
        None, description="API key the SDK client and `modelport predict --url` send."
    )
    insecure: bool = Field(
        False,
        description="Allow binding beyond loopback with authentication off "
        "(`serve --insecure`); the server warns at start and on /readyz.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _StrictYamlSource(settings_cls, config_file()))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'modelport.db').resolve()}"

    @property
    def resolved_artifact_uri(self) -> str:
        return self.artifact_uri or str((self.home / "artifacts").resolve())

    def storage_options(self, uri: str) -> dict[str, Any]:
        """fsspec options for ``uri``: the S3-compatible endpoint when one is set."""
        if self.s3_endpoint_url and uri.startswith("s3://"):
            return {"client_kwargs": {"endpoint_url": self.s3_endpoint_url}}
        return {}

    @property
    def resolved_workers(self) -> int:
        """``workers``, with 0 meaning one per CPU this process may run on (its affinity;
        under a container CPU quota, set it explicitly)."""
        return self.workers or len(os.sched_getaffinity(0))

    @property
    def cache_dir(self) -> Path:
        """Local copies of remote artifacts, verified before use."""
        return self.home / "cache"

    def redacted(self) -> dict[str, Any]:
        """Effective values for `modelport config show`, secrets hidden: secret settings
        entirely, and the credentials of any URL (``s3://key:secret@bucket``)."""
        values = self.model_dump(mode="json")
        for name, value in values.items():
            if isinstance(getattr(self, name), SecretStr):
                values[name] = REDACTED
            elif isinstance(value, str):
                values[name] = without_credentials(value)
        return values


REDACTED = "**********"


def without_credentials(value: str) -> str:
    """``value`` with the user information of a URL masked as a whole (an S3 access key is a
    credential too); anything that is not such a URL is unchanged."""
    parts = urlsplit(value)
    if not parts.scheme or "@" not in parts.netloc:
        return value
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def config_file() -> Path:
    """The YAML file settings are read from (it need not exist)."""
    return Path(os.environ.get("MODELPORT_CONFIG", "modelport.yaml"))


class _StrictYamlSource(YamlConfigSettingsSource):
    """``modelport.yaml``, where a key that names no setting is an error, not silently ignored.

    (Unknown ``MODELPORT_*`` environment variables stay ignored: the environment is shared
    with everything else a machine runs.)
    """

    def __init__(self, settings_cls: type[BaseSettings], yaml_file: Path) -> None:
        self._known = set(settings_cls.model_fields)
        super().__init__(settings_cls, yaml_file=yaml_file)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = yaml.safe_load(file_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(
                f"{file_path} is not valid YAML: {_yaml_problem(exc)}"
            ) from exc
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{file_path} must map setting names to values, not hold a {type(data).__name__}"
            )
        unknown = sorted(str(key) for key in data if str(key) not in self._known)
        if unknown:
            named = ", ".join(_with_suggestion(key, self._known) for key in unknown)
            raise ConfigurationError(f"unknown setting(s) in {file_path}: {named}")
        return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def _with_suggestion(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)``, with a bad value reported as a ``ConfigurationError`` that
    names where it came from: the environment variable, the YAML key, or the override."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe_problem(error, overrides) for error in exc.errors()]
        raise ConfigurationError("; ".join(problems)) from exc
    except SettingsError as exc:  # a list or mapping variable that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"MODELPORT_{field[1].upper()}" if field else "a MODELPORT_* variable"
        raise ConfigurationError(
            f"{name} is not valid JSON (list and mapping settings take JSON in the environment)"
        ) from exc


def _describe_problem(error: Any, overrides: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    name = loc[0] if loc else ""
    variable = f"MODELPORT_{name.upper()}"
    field = Settings.model_fields.get(name)
    secret = field is not None and "SecretStr" in str(field.annotation)
    shown = "" if secret else f"={error['input']!r}"
    if name in overrides:
        where = f"{name}{shown}"
    elif variable in os.environ:
        where = f"{variable}{shown}"
    else:
        where = f"{'.'.join(loc)}{shown} in {config_file()}"
    return f"{where}: {error['msg']}"


def as_environment(settings: Settings) -> dict[str, str]:
    """``MODELPORT_*`` variables that rebuild ``settings`` in another process (secrets too)."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):
            value = secret.get_secret_value()
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"MODELPORT_{name.upper()}"] = text
    return env


def describe_fields() -> list[tuple[str, str, str]]:
    """(env var, default, description) of every setting, for docs and `config show`."""
    rows = []
    for name, field in Settings.model_fields.items():
        value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        default = "(unset)" if value is None else str(value)
        rows.append((f"MODELPORT_{name.upper()}", default, field.description or ""))
    return rows


def dump_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.redacted(), sort_keys=False)
