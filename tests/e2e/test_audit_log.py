"""The audit log on both metadata backends: one entry per change, in the change's transaction,
refused UPDATE/DELETE, a hash chain that names tampering, and no fork under concurrent writers.

Every test runs on SQLite in ``tmp_path`` and on a fresh PostgreSQL database (``backend``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from sklearn.linear_model import LogisticRegression
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from modelport.config import Settings
from modelport.errors import (
    AliasNotFoundError,
    ConflictError,
    InvalidInputError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
)
from modelport.registry import Actor, AuditEntry, PreparedModel, Registry, Stage, prepare_object
from modelport.registry.audit import MAX_PAGE, append
from modelport.store.db import MIGRATIONS
from tests.e2e.conftest import settings_env

ALICE = Actor("key:ab12cd34ef56", key_id="ab12cd34ef56", request_id="req-1", client="10.0.0.7")


@pytest.fixture
def registry(backend: Settings) -> Iterator[Registry]:
    reg = Registry.from_settings(backend)
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def prepared(
    iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> Iterator[PreparedModel]:
    with prepare_object(iris_logreg, iris_data[0][:10]) as staged:
        yield staged


def _all(registry: Registry) -> list[AuditEntry]:
    return registry.audit.entries(limit=MAX_PAGE)


def _one_entry(registry: Registry, change: Callable[[], object]) -> AuditEntry:
    """Make ``change`` and return the one entry it wrote (failing if it wrote none or more)."""
    before = _all(registry)
    change()
    after = _all(registry)
    assert after[:-1] == before
    assert len(after) == len(before) + 1
    return after[-1]


def _refusing(engine: Engine, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))


def _drop_triggers(engine: Engine) -> None:
    """What someone rewriting history would do first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def test_every_change_writes_one_entry_saying_who_what_before_and_after(
    registry: Registry, prepared: PreparedModel
) -> None:
    local = Actor.local().name
    first = registry.register("iris", prepared)
    entry = _one_entry(registry, lambda: registry.register("iris", prepared, actor=ALICE))
    assert (entry.actor, entry.key_id, entry.request_id, entry.client) == (
        "key:ab12cd34ef56",
        "ab12cd34ef56",
        "req-1",
        "10.0.0.7",
    )
    assert (entry.action, entry.target, entry.before) == ("model.register", "iris/2", None)
    assert entry.after == {
        "version": 2,
        "flavor": "sklearn",
        "trusted": False,
        "files": dict(first.files),  # the same files: the same hashes
    }

    expected = [
        (lambda: registry.set_alias("iris", "production", 1), "alias.set", "iris@production",
         None, {"version": 1}),
        (lambda: registry.set_alias("iris", "production", 2), "alias.set", "iris@production",
         {"version": 1}, {"version": 2}),
        (lambda: registry.transition_stage("iris", 2, Stage.PRODUCTION), "version.stage",
         "iris/2", {"stage": "None"}, {"stage": "Production"}),
        (lambda: registry.update_model("iris", description="flowers", tags={"team": "bio"}),
         "model.update", "iris", {"description": "", "tags": {}},
         {"description": "flowers", "tags": {"team": "bio"}}),
        (lambda: registry.update_version("iris", 1, tags={"note": "old"}), "version.update",
         "iris/1", {"description": "", "tags": {}}, {"description": "", "tags": {"note": "old"}}),
        (lambda: registry.delete_alias("iris", "production"), "alias.delete", "iris@production",
         {"version": 2}, None),
        (lambda: registry.delete_version("iris", 1), "version.delete", "iris/1",
         {"version": 1, "flavor": "sklearn", "trusted": False, "files": dict(first.files),
          "stage": "None"}, None),
    ]  # fmt: skip
    for change, action, target, before, after in expected:
        entry = _one_entry(registry, change)
        assert (entry.actor, entry.key_id, entry.client) == (local, None, None)
        assert (entry.action, entry.target, entry.before, entry.after) == (
            action,
            target,
            before,
            after,
        )
    result = registry.audit.verify()
    assert (result.ok, result.count, result.broken_id) == (True, 9, None)
    assert result.head == _all(registry)[-1].hash


def test_a_change_that_fails_leaves_no_entry(registry: Registry, prepared: PreparedModel) -> None:
    registry.register("iris", prepared)
    registry.set_alias("iris", "production", 1)
    before = _all(registry)
    failing: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: registry.set_alias("iris", "production", 9), ModelVersionNotFoundError),
        (lambda: registry.set_alias("ghost", "production", 1), ModelNotFoundError),
        (lambda: registry.transition_stage("iris", 9, Stage.STAGING), ModelVersionNotFoundError),
        (lambda: registry.delete_alias("iris", "staging"), AliasNotFoundError),
        (lambda: registry.delete_version("iris", 1), ConflictError),  # production points at it
        (lambda: registry.update_model("ghost", description="x"), ModelNotFoundError),
        (lambda: registry.update_version("iris", 1, tags={"bad": float("nan")}), InvalidInputError),
        (lambda: registry.register("iris", prepared, metrics={"x": object()}), InvalidInputError),
    ]
    for change, error in failing:
        with pytest.raises(error):
            change()
    assert _all(registry) == before


def _append_then_fail(registry: Registry) -> None:
    with registry.database.write() as session:
        append(session, ALICE, "alias.set", "iris@production", None, {"version": 1})
        raise ConflictError("the change failed after its entry was appended")


def test_an_entry_rolls_back_with_the_transaction_it_was_appended_in(registry: Registry) -> None:
    with pytest.raises(ConflictError):
        _append_then_fail(registry)
    assert _all(registry) == []
    with registry.database.write() as session:
        append(session, ALICE, "alias.set", "iris@production", None, {"version": 1})
    assert [e.id for e in _all(registry)] == [1]
    assert registry.audit.verify().ok


def test_the_database_refuses_to_update_or_delete_entries(
    registry: Registry, prepared: PreparedModel
) -> None:
    registry.register("iris", prepared)
    written = _all(registry)
    _refusing(registry.engine, "UPDATE audit_log SET actor = 'mallory'")
    _refusing(registry.engine, "DELETE FROM audit_log")
    if registry.engine.dialect.name == "postgresql":
        _refusing(registry.engine, "TRUNCATE audit_log")
    assert _all(registry) == written


@pytest.mark.parametrize(
    ("tampering", "broken", "reason"),
    [
        ("UPDATE audit_log SET after = '{\"version\": 7}' WHERE id = 2", 2, "was changed"),
        ("DELETE FROM audit_log WHERE id = 2", 3, "does not follow"),
        ("DELETE FROM audit_log WHERE id = 4", 4, "ends at entry 3"),
    ],
    ids=["changed", "removed", "cut-off-the-end"],
)
def test_verify_names_the_first_entry_tampered_with(
    registry: Registry, prepared: PreparedModel, tampering: str, broken: int, reason: str
) -> None:
    registry.register("iris", prepared)
    for version in (1, 1, 1):  # the same target again: entries differ by id and time only
        registry.set_alias("iris", "production", version)
    assert registry.audit.verify().ok
    _drop_triggers(registry.engine)
    with registry.engine.begin() as conn:
        conn.execute(text(tampering))
    result = registry.audit.verify()
    assert (result.ok, result.broken_id) == (False, broken)
    assert result.reason is not None
    assert reason in result.reason


def test_entries_filter_by_time_actor_action_and_target_and_page_by_id(
    registry: Registry, prepared: PreparedModel
) -> None:
    registry.register("iris", prepared, actor=ALICE)
    registry.register("iris_2", prepared)  # "_" is LIKE's wildcard: must not match iris-
    registry.set_alias("iris", "production", 1)
    registry.transition_stage("iris", 1, Stage.STAGING, actor=ALICE)
    everything = _all(registry)
    assert [e.target for e in registry.audit.entries(target="iris")] == [
        "iris/1",
        "iris@production",
        "iris/1",
    ]
    assert [e.id for e in registry.audit.entries(target="iris@production")] == [3]
    assert [e.id for e in registry.audit.entries(actor=ALICE.name)] == [1, 4]
    assert [e.id for e in registry.audit.entries(action="model.register")] == [1, 2]
    assert registry.audit.entries(since=everything[-1].at) == everything[-1:]
    assert registry.audit.entries(until=everything[0].at) == everything[:1]
    first, second = registry.audit.entries(limit=2), registry.audit.entries(limit=2, after_id=2)
    assert first + second == everything
    with pytest.raises(InvalidInputError):
        registry.audit.entries(limit=0)


def test_migration_0003_downgrades_and_upgrades_cleanly(backend: Settings) -> None:
    registry = Registry.from_settings(backend)
    try:
        registry.list_models()  # migrates to head
        with registry.engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
            assert "audit_log" not in inspect(conn).get_table_names()
            command.upgrade(config, "0003")
        with registry.database.write() as session:  # row triggers fire only for a row
            append(session, ALICE, "alias.set", "iris@production", None, {"version": 1})
        _refusing(registry.engine, "DELETE FROM audit_log")
        assert registry.audit.verify().ok
    finally:
        registry.close()


# Moves its own alias ten times as its own actor, once the start file appears.
MOVER = """
import pathlib, sys, time
from modelport.config import Settings
from modelport.registry import Actor, Registry

home, database_url, ready, start, worker = sys.argv[1:6]
registry = Registry.from_settings(Settings(home=home, database_url=database_url))
registry.get_model("iris")
pathlib.Path(ready).touch()
while not pathlib.Path(start).exists():
    time.sleep(0.002)
for move in range(MOVES):
    registry.set_alias("iris", f"w{worker}", 1 + move % 2, actor=Actor(f"worker:{worker}"))
registry.close()
"""
MOVES = 10


def test_concurrent_writers_keep_one_unbroken_chain(
    backend: Settings, registry: Registry, prepared: PreparedModel, tmp_path: Path
) -> None:
    registry.register("iris", prepared)
    registry.register("iris", prepared)
    start = tmp_path / "start"
    workers = []
    try:
        for worker in range(2):
            ready = tmp_path / f"ready-{worker}"
            args = [backend.home, backend.resolved_database_url, ready, start, worker]
            workers.append(
                (
                    ready,
                    subprocess.Popen(
                        [sys.executable, "-c", MOVER.replace("MOVES", str(MOVES))]
                        + [str(a) for a in args],
                        env=settings_env(backend),
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in workers):
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        start.touch()
        for _, process in workers:
            _, stderr = process.communicate(timeout=90)
            assert process.returncode == 0, stderr
    finally:
        for _, process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    result = registry.audit.verify()
    assert (result.ok, result.count) == (True, 2 + 2 * MOVES)
    entries = _all(registry)
    assert [e.id for e in entries] == list(range(1, 2 + 2 * MOVES + 1))
    for worker in range(2):
        mine = [e for e in entries if e.actor == f"worker:{worker}"]
        assert [e.after for e in mine] == [{"version": 1 + m % 2} for m in range(MOVES)]
