"""The registry on both metadata backends: the embedded SQLite file and the real PostgreSQL.

Every test runs twice (``backend`` fixture): once on SQLite in ``tmp_path``, once on a fresh
PostgreSQL database. Artifacts are real files in a local folder; nothing of ours is mocked.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from modelport.config import Settings
from modelport.errors import (
    AliasNotFoundError,
    ArtifactIntegrityError,
    ConflictError,
    InvalidInputError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    NotFoundError,
    StorageUnavailableError,
)
from modelport.registry import PreparedModel, Registry, Stage, prepare_object
from modelport.runtimes.base import call_model
from modelport.runtimes.signature import SignatureKind, TensorSpec, sample_arrays
from modelport.sdk import load_model, log_model
from modelport.store.db import MIGRATIONS, PAGE_SIZE, create_db_engine

IrisData = tuple[np.ndarray, np.ndarray]


@pytest.fixture
def registry(backend: Settings) -> Iterator[Registry]:
    reg = Registry.from_settings(backend)
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def prepared(iris_logreg: LogisticRegression, iris_data: IrisData) -> Iterator[PreparedModel]:
    """One prepared iris model, registered as many times as a test likes."""
    with prepare_object(iris_logreg, iris_data[0][:10]) as st:
        yield st


def artifact_files(settings: Settings) -> set[str]:
    """Every file in the local artifact store, relative to its root."""
    root = Path(settings.resolved_artifact_uri)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def version_files(registry: Registry, name: str) -> set[str]:
    return {f"{v.artifact_key}/{f}" for v in registry.list_versions(name) for f in v.files}


# -- versions --------------------------------------------------------------------------


def test_versions_are_numbered_per_model(registry: Registry, prepared: PreparedModel) -> None:
    numbers = [registry.register("iris", prepared).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert registry.register("other", prepared).version == 1
    assert registry.register("iris", prepared).version == 4
    assert [v.version for v in registry.list_versions("iris")] == [1, 2, 3, 4]
    assert [m.name for m in registry.list_models()] == ["iris", "other"]
    model = registry.get_model("iris")
    assert model.latest_version == 4
    assert model.created_at <= model.updated_at <= datetime.now(UTC)
    record = registry.get_version("iris", 2)
    assert (record.name, record.version, record.address) == ("iris", 2, "iris/2")
    assert record.stage is Stage.NONE
    assert record.artifact_key.startswith("iris/")


def test_resolve_by_number_alias_and_latest(registry: Registry, prepared: PreparedModel) -> None:
    for _ in range(3):
        registry.register("iris", prepared)
    registry.set_alias("iris", "production", 2)
    assert registry.resolve("iris").version == 3
    assert registry.resolve("iris@latest").version == 3
    assert registry.resolve("models:/iris/latest").version == 3
    assert registry.resolve("iris/1").version == 1
    assert registry.resolve("models:/iris/1").version == 1
    assert registry.resolve("iris@production").version == 2
    assert registry.resolve("models:/iris@production").aliases == ("production",)


def test_aliases_set_move_delete_with_history(registry: Registry, prepared: PreparedModel) -> None:
    for _ in range(3):
        registry.register("iris", prepared)
    assert registry.set_alias("iris", "production", 1).aliases == ("production",)
    registry.set_alias("iris", "staging", 1)
    assert registry.get_version("iris", 1).aliases == ("production", "staging")
    registry.set_alias("iris", "production", 3)  # move
    registry.set_alias("iris", "production", 3)  # no-op: no history entry
    assert registry.get_version("iris", 1).aliases == ("staging",)
    assert registry.get_model("iris").aliases == {"production": 3, "staging": 1}
    registry.delete_alias("iris", "staging")
    with pytest.raises(AliasNotFoundError):
        registry.resolve("iris@staging")

    history = [(e.alias, e.from_version, e.to_version) for e in registry.alias_history("iris")]
    assert history == [
        ("production", None, 1),
        ("staging", None, 1),
        ("production", 1, 3),
        ("staging", 1, None),
    ]
    production = registry.alias_history("iris", "production")
    assert [(e.from_version, e.to_version) for e in production] == [(None, 1), (1, 3)]
    assert production[0].at <= production[1].at
    assert production[1].to_dict()["to_version"] == 3


@pytest.mark.parametrize(
    ("alias", "pointer"),
    [
        ("latest", "/alias"),
        ("3", "/alias"),
        ("bad alias", "/alias"),
        ("-x", "/alias"),
        ("a" * 101, "/alias"),
        ("prod\n", "/alias"),
    ],
)
def test_reserved_and_invalid_alias_names(
    registry: Registry, prepared: PreparedModel, alias: str, pointer: str
) -> None:
    registry.register("iris", prepared)
    with pytest.raises(InvalidInputError) as caught:
        registry.set_alias("iris", alias, 1)
    assert caught.value.pointer == pointer
    assert registry.get_model("iris").aliases == {}


def test_alias_of_100_characters_fits(registry: Registry, prepared: PreparedModel) -> None:
    registry.register("iris", prepared)
    alias = "a" * 100
    registry.set_alias("iris", alias, 1)
    assert registry.resolve(f"iris@{alias}").version == 1


def test_stage_transitions_keep_history(registry: Registry, prepared: PreparedModel) -> None:
    registry.register("iris", prepared)
    registry.transition_stage("iris", 1, Stage.STAGING)
    registry.transition_stage("iris", 1, Stage.STAGING)  # unchanged: not recorded
    assert registry.transition_stage("iris", 1, Stage.PRODUCTION).stage is Stage.PRODUCTION
    registry.transition_stage("iris", 1, Stage.ARCHIVED)
    history = registry.stage_history("iris", 1)
    assert [(t.from_stage, t.to_stage) for t in history] == [
        (Stage.NONE, Stage.STAGING),
        (Stage.STAGING, Stage.PRODUCTION),
        (Stage.PRODUCTION, Stage.ARCHIVED),
    ]
    assert history[0].to_dict() == {
        "from_stage": "None",
        "to_stage": "Staging",
        "at": history[0].at.isoformat(),
    }
    assert registry.get_version("iris", 1).stage is Stage.ARCHIVED


# -- metadata ----------------------------------------------------------------------------


def test_metadata_round_trips(registry: Registry, prepared: PreparedModel) -> None:
    tags = {"team": "risk", "nested": {"a": [1, 2]}}
    params = {"C": 1.0, "penalty": "l2", "max_iter": 500, "classes": None}
    metrics = {"accuracy": np.float64(0.97), "n_test": np.int64(30), "f1": np.float32(0.5)}
    lineage = {"dataset": "s3://data/iris.csv", "git": "abc123", "parents": ["iris/1"]}
    registry.register(
        "iris",
        prepared,
        description="first cut",
        tags=tags,
        params=params,
        metrics=metrics,
        lineage=lineage,
    )
    record = registry.get_version("iris", 1)
    assert record.description == "first cut"
    assert record.tags == tags
    assert record.params == params
    # numpy scalars (what sklearn's metric functions return) are stored as plain numbers
    assert record.metrics == {"accuracy": 0.97, "n_test": 30, "f1": 0.5}
    assert type(record.metrics["n_test"]) is int
    assert record.lineage == lineage
    assert record.to_dict()["metrics"] == {"accuracy": 0.97, "n_test": 30, "f1": 0.5}

    updated = registry.update_version("iris", 1, description="second look", tags={"x": "y"})
    assert updated.description == "second look"
    assert updated.tags == {**tags, "x": "y"}
    model = registry.update_model("iris", description="Iris classifier", tags={"owner": "me"})
    assert (model.description, model.tags) == ("Iris classifier", {"owner": "me"})
    assert registry.get_model("iris").to_dict()["description"] == "Iris classifier"


def test_library_versions_and_tensor_signature(registry: Registry, prepared: PreparedModel) -> None:
    record = registry.register("iris", prepared)
    assert record.flavor == "sklearn"
    assert record.framework == "sklearn"
    assert record.library_versions["scikit-learn"] == sklearn.__version__
    assert record.library_versions["numpy"] == np.__version__
    assert {"skops"} <= set(record.library_versions)
    stored = registry.get_version("iris", 1).signature
    assert stored.kind is SignatureKind.TENSOR
    assert stored.inputs == (TensorSpec("input", "float64", (-1, 4)),)
    assert stored.outputs == (
        TensorSpec("label", "int64", (-1,)),
        TensorSpec("probabilities", "float64", (-1, 3)),
    )
    assert set(record.files) == {"model.skops", "input_example.json"}
    assert all(len(digest) == 64 for digest in record.files.values())


def test_columns_model_round_trip(
    registry: Registry,
    backend: Settings,
    mixed_pipeline: Pipeline,
    mixed_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame = mixed_frame[0]
    with prepare_object(mixed_pipeline, frame.head(20)) as st:
        record = registry.register("churn", st)
    stored = registry.get_version("churn", 1).signature
    assert stored.kind is SignatureKind.COLUMNS
    assert [(s.name, s.dtype) for s in stored.inputs] == [
        ("age", "int64"),
        ("income", "float64"),
        ("city", "string"),
        ("member", "string"),
    ]
    assert [s.name for s in stored.outputs] == ["label", "probabilities"]
    runtime = registry.load(record)
    batch = stored.conform(sample_arrays(frame)[1])
    np.testing.assert_array_equal(
        call_model(runtime, batch)["label"], mixed_pipeline.predict(frame)
    )


def test_loaded_version_predicts_like_the_live_object(
    backend: Settings, iris_logreg: LogisticRegression, iris_data: IrisData
) -> None:
    X = iris_data[0]
    record = log_model(iris_logreg, "iris", X[:10], metrics={"accuracy": 0.97}, settings=backend)
    assert record.version == 1
    loaded = load_model("models:/iris/1", settings=backend)
    np.testing.assert_array_equal(loaded.predict(X), iris_logreg.predict(X))
    np.testing.assert_allclose(
        loaded.predict_outputs(X)["probabilities"], iris_logreg.predict_proba(X)
    )


# -- not found ---------------------------------------------------------------------------


NOT_FOUND: list[tuple[str, Callable[[Registry], object], type[NotFoundError]]] = [
    ("get_model", lambda r: r.get_model("nope"), ModelNotFoundError),
    ("list_versions", lambda r: r.list_versions("nope"), ModelNotFoundError),
    ("get_version", lambda r: r.get_version("nope", 1), ModelNotFoundError),
    ("resolve", lambda r: r.resolve("nope"), ModelNotFoundError),
    ("resolve alias", lambda r: r.resolve("nope@production"), ModelNotFoundError),
    ("set_alias", lambda r: r.set_alias("nope", "production", 1), ModelNotFoundError),
    ("alias_history", lambda r: r.alias_history("nope"), ModelNotFoundError),
    ("update_model", lambda r: r.update_model("nope", description="x"), ModelNotFoundError),
    ("get_version 9", lambda r: r.get_version("iris", 9), ModelVersionNotFoundError),
    ("get_version 0", lambda r: r.get_version("iris", 0), ModelVersionNotFoundError),
    ("get_version 2**40", lambda r: r.get_version("iris", 2**40), ModelVersionNotFoundError),
    ("resolve 9", lambda r: r.resolve("iris/9"), ModelVersionNotFoundError),
    ("resolve int32 max", lambda r: r.resolve("iris/2147483647"), ModelVersionNotFoundError),
    ("set_alias 9", lambda r: r.set_alias("iris", "production", 9), ModelVersionNotFoundError),
    (
        "transition 9",
        lambda r: r.transition_stage("iris", 9, Stage.STAGING),
        ModelVersionNotFoundError,
    ),
    ("stage_history 9", lambda r: r.stage_history("iris", 9), ModelVersionNotFoundError),
    (
        "update_version 9",
        lambda r: r.update_version("iris", 9, description="x"),
        ModelVersionNotFoundError,
    ),
    ("delete_version 9", lambda r: r.delete_version("iris", 9), ModelVersionNotFoundError),
    ("resolve alias", lambda r: r.resolve("iris@production"), AliasNotFoundError),
    ("delete_alias", lambda r: r.delete_alias("iris", "production"), AliasNotFoundError),
]


def test_unknown_names_raise_the_right_not_found(
    registry: Registry, prepared: PreparedModel
) -> None:
    registry.register("iris", prepared)
    for what, call, error in NOT_FOUND:
        with pytest.raises(NotFoundError) as caught:
            call(registry)
        assert type(caught.value) is error, what
        assert caught.value.status == 404, what
    assert [v.version for v in registry.list_versions("iris")] == [1]  # nothing changed


def test_model_without_versions_has_no_latest(registry: Registry, prepared: PreparedModel) -> None:
    registry.register("iris", prepared)
    registry.delete_version("iris", 1)
    assert registry.get_model("iris").latest_version is None
    with pytest.raises(ModelVersionNotFoundError):
        registry.resolve("iris")


# -- deletion, integrity -------------------------------------------------------------------


def test_delete_version_refused_while_an_alias_points_at_it(
    registry: Registry, backend: Settings, prepared: PreparedModel
) -> None:
    first = registry.register("iris", prepared)
    registry.register("iris", prepared)
    registry.set_alias("iris", "production", 2)
    registry.set_alias("iris", "champion", 2)
    with pytest.raises(ConflictError, match="champion, production") as caught:
        registry.delete_version("iris", 2)
    assert caught.value.status == 409
    assert registry.get_version("iris", 2).version == 2

    registry.transition_stage("iris", 1, Stage.ARCHIVED)
    registry.delete_version("iris", 1)
    assert [v.version for v in registry.list_versions("iris")] == [2]
    assert not any(f.startswith(first.artifact_key) for f in artifact_files(backend))
    assert artifact_files(backend) == version_files(registry, "iris")


def test_deleted_version_numbers_are_never_reused(
    registry: Registry, prepared: PreparedModel
) -> None:
    """Reusing a number would make ``iris/2`` silently mean a different model."""
    registry.register("iris", prepared)
    registry.register("iris", prepared)
    registry.set_alias("iris", "production", 2)
    registry.set_alias("iris", "production", 1)
    registry.delete_version("iris", 2)
    assert registry.register("iris", prepared).version == 3
    assert registry.get_model("iris").latest_version == 3


@pytest.mark.parametrize("filename", ["model.skops", "input_example.json"])
def test_every_load_verifies_sha256(
    registry: Registry, backend: Settings, prepared: PreparedModel, filename: str
) -> None:
    record = registry.register("iris", prepared)
    registry.load(record)
    path = Path(backend.resolved_artifact_uri) / record.artifact_key / filename
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=filename) as caught:
        registry.load(registry.resolve("iris/1"))
    assert caught.value.code == "artifact_integrity_error"
    with pytest.raises(ArtifactIntegrityError):
        load_model("iris", settings=backend)
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        registry.load(record)


# -- failed registrations leave nothing behind ---------------------------------------------


UNSTORABLE: list[tuple[str, dict[str, Any], str]] = [
    ("metrics", {"loss": float("nan")}, "/metrics/loss"),
    ("metrics", {"auc": np.float64("inf")}, "/metrics/auc"),
    ("params", {"estimator": object()}, "/params/estimator"),
    ("tags", {"a/b": {1, 2}}, "/tags/a~1b"),
    ("lineage", {"at": datetime.now(UTC)}, "/lineage/at"),
]


def test_metadata_json_cannot_hold_is_a_422_and_leaves_nothing(
    registry: Registry, backend: Settings, prepared: PreparedModel
) -> None:
    """NaN metrics used to pass on SQLite and crash PostgreSQL's JSON column with a 500."""
    for field, value, pointer in UNSTORABLE:
        options: dict[str, Any] = {field: value}
        with pytest.raises(InvalidInputError) as caught:
            registry.register("iris", prepared, **options)
        assert caught.value.pointer == pointer
        assert caught.value.status == 422
    with pytest.raises(ModelNotFoundError):
        registry.get_model("iris")
    assert artifact_files(backend) == set()


def test_updated_tags_are_json_checked_too(registry: Registry, prepared: PreparedModel) -> None:
    registry.register("iris", prepared, tags={"a": 1})
    with pytest.raises(InvalidInputError) as caught:
        registry.update_version("iris", 1, tags={"score": float("nan")})
    assert caught.value.pointer == "/tags/score"
    with pytest.raises(InvalidInputError):
        registry.update_model("iris", tags={"owner": object()})
    assert registry.update_version("iris", 1, tags={"n": np.int64(2)}).tags == {"a": 1, "n": 2}


def test_failed_database_write_leaves_no_row_and_no_files(
    registry: Registry, backend: Settings, prepared: PreparedModel
) -> None:
    registry.register("iris", prepared)
    kept = artifact_files(backend)
    # A real failure inside the inserting transaction: the database refuses the row.
    with registry.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON model_versions "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON model_versions "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    with pytest.raises(DBAPIError, match="disk on fire"):
        registry.register("iris", prepared)
    with pytest.raises(DBAPIError, match="disk on fire"):
        registry.register("brand-new", prepared)
    assert [v.version for v in registry.list_versions("iris")] == [1]
    assert registry.get_model("iris").latest_version == 1
    with pytest.raises(ModelNotFoundError):  # the model row went with the version row
        registry.get_model("brand-new")
    assert artifact_files(backend) == kept

    with registry.engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER refuse"
            if conn.dialect.name == "sqlite"
            else "DROP TRIGGER refuse ON model_versions"
        )
    assert registry.register("iris", prepared).version == 2  # the failures used no number


def test_model_failing_on_its_sample_is_never_registered(
    registry: Registry, backend: Settings, iris_logreg: LogisticRegression
) -> None:
    wrong_width = np.ones((5, 3))  # the model was fitted on 4 features
    with (
        pytest.raises(ModelLoadError, match="failed on the sample"),
        prepare_object(iris_logreg, wrong_width) as st,
    ):
        registry.register("iris", st)
    with pytest.raises(ModelNotFoundError):
        registry.get_model("iris")
    assert artifact_files(backend) == set()


# -- timeouts ------------------------------------------------------------------------------


@contextmanager
def _write_lock_held(settings: Settings) -> Iterator[None]:
    """Another client holds the lock a registry write needs, as a stuck transaction would."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        holder = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("LOCK TABLE model_versions IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


def test_a_write_waiting_on_a_held_lock_fails_after_db_timeout(
    backend: Settings, prepared: PreparedModel
) -> None:
    settings = backend.model_copy(update={"db_timeout_s": 2.0})
    registry = Registry.from_settings(settings)
    try:
        registry.register("iris", prepared)
        with _write_lock_held(settings):
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                registry.transition_stage("iris", 1, Stage.STAGING)
            assert time.monotonic() - started < 8  # busy / statement timeout, then 503
        assert registry.transition_stage("iris", 1, Stage.STAGING).stage is Stage.STAGING
    finally:
        registry.close()


# -- migrations ----------------------------------------------------------------------------


def test_migrations_run_on_first_use_and_are_idempotent(backend: Settings) -> None:
    url = backend.resolved_database_url
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    first = create_db_engine(url)
    try:
        tables = set(inspect(first).get_table_names())
        assert {
            "registered_models",
            "model_versions",
            "aliases",
            "alias_events",
            "stage_transitions",
            "alembic_version",
        } <= tables
        with first.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
    finally:
        first.dispose()
    second = create_db_engine(url)  # finds the schema current and changes nothing
    try:
        with second.connect() as conn:
            assert conn.scalars(text("SELECT version_num FROM alembic_version")).all() == [head]
        assert set(inspect(second).get_table_names()) == tables
    finally:
        second.dispose()


def test_a_new_sqlite_file_gets_large_pages_and_an_old_one_keeps_its_own(
    tmp_path: Path, prepared: PreparedModel
) -> None:
    old_file = tmp_path / "old.db"
    made_before = sqlite3.connect(old_file)
    made_before.execute("CREATE TABLE older (x)")  # the file now has its page size: 4,096
    made_before.close()
    for path, pages in ((tmp_path / "new.db", PAGE_SIZE), (old_file, 4096)):
        settings = Settings(home=tmp_path / path.stem, database_url=f"sqlite:///{path}")
        registry = Registry.from_settings(settings)
        try:
            registry.register("iris", prepared)
            assert registry.get_version("iris", 1).version == 1
        finally:
            registry.close()
        with sqlite3.connect(path) as reader:
            assert reader.execute("PRAGMA page_size").fetchone() == (pages,)
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_upgrade_from_0001_keeps_version_numbering(
    backend: Settings, prepared: PreparedModel
) -> None:
    """A database made by the first release is upgraded in place on first use."""
    url = backend.resolved_database_url
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    old = create_engine(url)
    try:
        with old.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(
                text(
                    "INSERT INTO registered_models (id, name, description, tags, created_at, "
                    "updated_at) VALUES (1, 'iris', '', '{}', '2024-01-01', '2024-01-01')"
                )
            )
            for number in (1, 2, 5):
                conn.execute(
                    text(
                        "INSERT INTO model_versions (model_id, version, flavor, framework, "
                        "artifact_key, files, signature, flavor_options, library_versions, "
                        "trusted, stage, description, tags, params, metrics, lineage, "
                        "created_at) VALUES (1, :n, 'sklearn', 'sklearn', :key, '{}', :sig, "
                        "'{}', '{}', false, 'None', '', '{}', '{}', '{}', '{}', '2024-01-01')"
                    ),
                    {
                        "n": number,
                        "key": f"iris/{number:032x}",
                        "sig": '{"kind": "tensor", "inputs": []}',
                    },
                )
    finally:
        old.dispose()
    registry = Registry.from_settings(backend)
    try:
        assert [v.version for v in registry.list_versions("iris")] == [1, 2, 5]
        assert registry.register("iris", prepared).version == 6
        assert registry.register("new", prepared).version == 1
    finally:
        registry.close()
