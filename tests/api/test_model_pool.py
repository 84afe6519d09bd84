"""The model pool on a real registry: several versions at once, unload after the last user."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

import modelport
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError
from modelport.inference import ModelPool
from modelport.inference.batching import BatchingOptions
from modelport.inference.executor import ModelExecutor
from modelport.inference.metrics import ServingMetrics
from modelport.inference.pool import is_permanent
from modelport.registry import Registry
from modelport.runtimes.batch import Batch
from tests.e2e.doubles import ClosingModel


def _pool(registry: Registry, settings: Settings) -> tuple[ModelPool, ModelExecutor]:
    executor = ModelExecutor(2, 1)
    pool = ModelPool(
        registry,
        executor,
        ServingMetrics(CollectorRegistry()),
        lambda name: BatchingOptions.for_model(settings, name),
    )
    return pool, executor


def test_two_versions_live_side_by_side_and_unload_after_their_last_request(
    settings: Settings, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOSED_MODEL_DIR", str(tmp_path))
    for _ in range(2):
        modelport.log_model(ClosingModel(), "twice", np.ones((2, 1)), settings=settings)
    one, two = registry.resolve("twice/1"), registry.resolve("twice/2")
    batch = Batch({"input": np.array([[3.0]])}, 1)

    async def scenario() -> list[str]:
        pool, executor = _pool(registry, settings)
        first, second, again = await asyncio.gather(
            pool.acquire(one), pool.acquire(two), pool.acquire(one)
        )
        assert first is again
        assert first.users == 2
        seen = sorted(f"{v.record.version}" for v in pool.loaded())
        assert (await second.batcher.predict(batch))["prediction"].tolist() == [6.0]
        with first.serving():  # a request still using version 1
            pool.release(first)
            pool.release(first)
            await asyncio.sleep(0.1)
            seen.append("closed" if (tmp_path / "closed").exists() else "open")
        await asyncio.sleep(0.2)
        seen.append("closed" if (tmp_path / "closed").exists() else "open")
        seen += [f"{v.record.version}" for v in pool.loaded()]
        await pool.close()
        executor.shutdown()
        return seen

    assert asyncio.run(scenario()) == ["1", "2", "open", "closed", "2"]


def test_a_tampered_version_fails_for_good(settings: Settings, registry: Registry) -> None:
    modelport.log_model(ClosingModel(), "tampered", np.ones((2, 1)), settings=settings)
    record = registry.resolve("tampered")
    code = next(p for p in registry.artifact_dir(record).rglob("*.py"))
    code.write_text(code.read_text() + "\n# changed\n")

    async def scenario() -> BaseException | None:
        pool, executor = _pool(registry, settings)
        try:
            await pool.acquire(record)
        except ArtifactIntegrityError as exc:
            return exc
        finally:
            await pool.close()
            executor.shutdown()
        return None

    failure = asyncio.run(scenario())
    assert failure is not None
    assert is_permanent(failure)
