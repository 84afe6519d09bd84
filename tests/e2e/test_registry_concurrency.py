"""Several real processes on one registry: version numbers, new models, killed registrations.

Workers are separate Python processes (``sys.executable -c``) that wait on a start file, so
their registrations really overlap. Both metadata backends are covered (``backend``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import create_engine, text

from modelport.config import Settings
from modelport.errors import ModelNotFoundError
from modelport.registry import PreparedModel, Registry, prepare_object
from tests.e2e.conftest import settings_env

WORKERS = 2
REGISTRATIONS = 10
NEW_MODELS = 4

# Builds its registry (migrating a brand-new database if it is first), says "ready" and waits
# for the start file; then registers the model the parent prepared, as ``argv[5]`` says.
WORKER = """
import json, pathlib, sys, time
from modelport.config import Settings
from modelport.registry import Registry, PreparedModel
from modelport.runtimes.base import SavedModel
from modelport.runtimes.signature import Signature

home, database_url, ready, start, mode, spec = sys.argv[1:7]
spec = json.loads(spec)
prepared = PreparedModel(pathlib.Path(spec["directory"]), spec["flavor"],
                     SavedModel(**spec["saved"]), Signature.from_dict(spec["signature"]),
                     spec["trusted"])
registry = Registry.from_settings(Settings(home=home, database_url=database_url))
pathlib.Path(ready).touch()
while not pathlib.Path(start).exists():
    time.sleep(0.002)
if mode == "race":
    new = [registry.register(f"fresh-{i}", prepared).version for i in range(NEW_MODELS)]
    shared = [registry.register("shared", prepared).version for _ in range(REGISTRATIONS)]
    print(json.dumps({"new": new, "shared": shared}))
else:
    registry.register("iris", prepared)  # the test kills us before this returns
    print("registered")
registry.close()
""".replace("NEW_MODELS", str(NEW_MODELS)).replace("REGISTRATIONS", str(REGISTRATIONS))


def staged_spec(prepared: PreparedModel) -> str:
    """What a worker needs to rebuild the parent's prepared model (files stay where they are)."""
    saved = prepared.saved
    return json.dumps(
        {
            "directory": str(prepared.directory),
            "flavor": prepared.flavor,
            "trusted": prepared.trusted,
            "signature": prepared.signature.to_dict(),
            "saved": {
                "framework": saved.framework,
                "options": dict(saved.options),
                "library_versions": dict(saved.library_versions),
                "needs_trust": saved.needs_trust,
            },
        }
    )


def start_workers(
    settings: Settings, prepared: PreparedModel, tmp_path: Path, count: int, mode: str
) -> tuple[list[subprocess.Popen[str]], Callable[[], None]]:
    """``count`` worker processes, all ready and waiting; call the returned ``go`` to start."""
    start = tmp_path / "start"
    ready = [tmp_path / f"ready-{i}" for i in range(count)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(settings.home.resolve()),
                settings.resolved_database_url,
                str(ready[i]),
                str(start),
                mode,
                staged_spec(prepared),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready):
        failed = [w for w in workers if w.poll() is not None]
        if failed:
            raise AssertionError(f"worker died before the start: {failed[0].communicate()[1]}")
        assert time.monotonic() < deadline, "workers did not get ready within 60 s"
        time.sleep(0.02)
    return workers, start.touch


def finish(worker: subprocess.Popen[str]) -> str:
    out, err = worker.communicate(timeout=90)
    assert worker.returncode == 0, err
    return out


@pytest.fixture
def registry(backend: Settings) -> Iterator[Registry]:
    reg = Registry.from_settings(backend)
    yield reg
    reg.close()


@pytest.fixture
def prepared(
    iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> Iterator[PreparedModel]:
    with prepare_object(iris_logreg, iris_data[0][:10]) as st:
        yield st


def test_processes_get_distinct_gap_free_versions(
    backend: Settings, prepared: PreparedModel, tmp_path: Path
) -> None:
    """Two processes race to create the same new models, then to version one model.

    They also all start on a brand-new database, so the first-use migration races too.
    """
    workers, go = start_workers(backend, prepared, tmp_path, WORKERS, "race")
    go()
    results = [json.loads(finish(w)) for w in workers]

    for i in range(NEW_MODELS):
        got = sorted(r["new"][i] for r in results)
        assert got == list(range(1, WORKERS + 1)), f"fresh-{i}: {got}"
    shared = sorted(v for r in results for v in r["shared"])
    assert shared == list(range(1, WORKERS * REGISTRATIONS + 1))
    for r in results:  # each process saw its own numbers rise
        assert r["shared"] == sorted(r["shared"])

    registry = Registry.from_settings(backend)
    try:
        names = [m.name for m in registry.list_models()]
        assert names == [*(f"fresh-{i}" for i in range(NEW_MODELS)), "shared"]
        versions = registry.list_versions("shared")
        assert [v.version for v in versions] == list(range(1, WORKERS * REGISTRATIONS + 1))
        assert len({v.artifact_key for v in versions}) == len(versions)
        assert registry.get_model("shared").latest_version == WORKERS * REGISTRATIONS
        registry.load(versions[-1])
    finally:
        registry.close()


@contextmanager
def registrations_blocked(settings: Settings) -> Iterator[Callable[[], bool]]:
    """Hold the lock a registration's row insert needs; yields "is someone waiting on it?"."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        lite = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=30)
        lite.execute("BEGIN IMMEDIATE")  # the database's one write lock
        try:
            yield lambda: True
        finally:
            lite.execute("ROLLBACK")
            lite.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn, engine.connect() as observer:
            conn.execute(text("SELECT id FROM registered_models WHERE name = 'iris' FOR UPDATE"))

            def waiting() -> bool:
                count = observer.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
                # pg_stat_activity is read once per transaction: end it to look afresh
                observer.rollback()
                return bool(count)

            yield waiting
            conn.rollback()
    finally:
        engine.dispose()


def new_keys(settings: Settings, known: set[str]) -> list[Path]:
    folder = Path(settings.resolved_artifact_uri) / "iris"
    return [p for p in folder.iterdir() if f"iris/{p.name}" not in known]


def test_registration_killed_before_commit_leaves_only_collectable_files(
    backend: Settings, registry: Registry, prepared: PreparedModel, tmp_path: Path
) -> None:
    kept = registry.register("iris", prepared)
    [worker], go = start_workers(backend, prepared, tmp_path, 1, "kill")
    with registrations_blocked(backend) as someone_waits:
        go()
        deadline = time.monotonic() + 60
        # wait until the worker has uploaded everything and is stuck writing its row
        while not (
            (keys := new_keys(backend, {kept.artifact_key}))
            and {p.name for p in keys[0].iterdir()} >= set(kept.files)
            and someone_waits()
        ):
            assert worker.poll() is None, worker.communicate()[1]
            assert time.monotonic() < deadline, "the worker never reached its row insert"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
    orphan = f"iris/{keys[0].name}"

    assert [v.version for v in registry.list_versions("iris")] == [1]
    assert orphan in dict(registry.artifacts.keys())
    assert registry.collect_garbage() == []  # too fresh: could still be an upload in flight
    assert keys[0].exists()
    assert registry.collect_garbage(older_than=timedelta(0)) == [orphan]
    assert not keys[0].exists()
    assert registry.collect_garbage(older_than=timedelta(0)) == []
    # the referenced version is untouched and still verifies; numbering has no gap
    registry.load(registry.get_version("iris", 1))
    assert registry.register("iris", prepared).version == 2


def test_collect_garbage_never_touches_referenced_or_foreign_files(
    backend: Settings, registry: Registry, prepared: PreparedModel
) -> None:
    versions = [registry.register(name, prepared) for name in ("iris", "iris", "other")]
    root = Path(backend.resolved_artifact_uri)
    orphan = root / "iris" / ("ab" * 16)
    orphan.mkdir()
    (orphan / "model.skops").write_bytes(b"half an upload")
    foreign = [
        root / "README.txt",
        root / "iris" / "notes.txt",
        root / "data" / "train.csv",
        root / "iris" / "not-a-key" / "file.bin",
    ]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not modelport's")
    assert registry.collect_garbage(older_than=timedelta(0)) == [f"iris/{'ab' * 16}"]
    assert all(p.exists() for p in foreign)
    for record in versions:
        registry.load(record)


def test_concurrent_alias_moves_keep_a_consistent_history(
    registry: Registry, prepared: PreparedModel
) -> None:
    """Racing writers of one alias: no error, and every move starts where the last ended."""
    for _ in range(4):
        registry.register("iris", prepared)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def move(version: int) -> None:
        try:
            barrier.wait(timeout=10)
            registry.set_alias("iris", "production", version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(1 + i % 4,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    history = registry.alias_history("iris", "production")
    assert history[0].from_version is None
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version
        assert after.from_version != after.to_version
    assert registry.resolve("iris@production").version == history[-1].to_version


# Registers a SlowModel on a sample asking it to sleep 600 s: staging runs the sample through
# the saved model, so the process sits in staging, its scratch folder written, until killed.
PREPARING_WORKER = """
import numpy as np
from modelport import log_model
from tests.e2e.doubles import SlowModel
log_model(SlowModel(), "slow", np.array([[600.0]]))
"""
ROOT = Path(__file__).resolve().parents[2]


def test_registration_killed_while_preparing_leaves_a_folder_gc_removes(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "staging-predicts"
    env = {**settings_env(settings), "SLOW_MODEL_MARKER": str(marker)}
    worker = subprocess.Popen(
        [sys.executable, "-c", PREPARING_WORKER],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, worker.communicate()[1]
            assert time.monotonic() < deadline, "the registration never reached its sample"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    (left,) = list((settings.home / "scratch").iterdir())
    assert (left / "code" / "doubles.py").is_file()  # the saved model, under the home

    fresh = cli("gc")  # younger than the default hour: it could be a registration running
    assert fresh.returncode == 0, fresh.stderr
    assert left.exists()
    collected = cli("gc", "--older-than-minutes", "0")
    assert collected.returncode == 0, collected.stderr
    assert f"scratch/{left.name}" in collected.stdout
    assert not left.exists()
    registry = Registry.from_settings(settings)
    try:
        with pytest.raises(ModelNotFoundError):  # and nothing was registered
            registry.get_model("slow")
    finally:
        registry.close()
