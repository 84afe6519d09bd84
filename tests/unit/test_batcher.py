"""The batcher on its own: a real executor, a real (tiny) runtime, no HTTP."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from modelport.inference.batching import Batcher, BatchingOptions
from modelport.inference.executor import ModelExecutor
from modelport.inference.metrics import ServingMetrics
from modelport.runtimes.batch import Batch, Outputs


class EchoRuntime:
    """Returns its input doubled; ``gate`` holds every call until the test opens it."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[int] = []

    def predict(self, batch: Batch) -> Outputs:
        self.gate.wait(5)
        self.calls.append(batch.n_rows)
        return {"prediction": batch.columns["input"][:, 0] * 2}


def _batch(value: float, rows: int = 1) -> Batch:
    return Batch({"input": np.full((rows, 1), value)}, rows)


def _batcher(runtime: EchoRuntime, workers: int = 1) -> tuple[Batcher, ModelExecutor]:
    executor = ModelExecutor(workers, 1)
    options = BatchingOptions(max_batch_size=64, max_wait_ms=0.0, max_queue_rows=1000)
    metrics = ServingMetrics(CollectorRegistry())
    return Batcher(runtime, executor, options, metrics, "echo", 1), executor


def test_requests_queued_behind_a_busy_model_share_one_call() -> None:
    runtime = EchoRuntime()

    async def scenario() -> list[Outputs]:
        batcher, executor = _batcher(runtime)
        first = asyncio.create_task(batcher.predict(_batch(0.0)))
        await asyncio.sleep(0.05)  # the first call holds the only model thread
        rest = [asyncio.create_task(batcher.predict(_batch(float(i), i))) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        runtime.gate.set()
        answers = await asyncio.gather(first, *rest)
        executor.shutdown()
        return answers

    answers = asyncio.run(scenario())
    assert runtime.calls == [1, 15]
    for i, answer in enumerate(answers):
        assert answer["prediction"].tolist() == [2.0 * i] * max(i, 1)


def test_a_closed_batcher_still_answers_late_requests() -> None:
    """A request can pick a version just before a hot swap closes its batcher."""
    runtime = EchoRuntime()

    async def scenario() -> list[Outputs]:
        batcher, executor = _batcher(runtime)
        busy = asyncio.create_task(batcher.predict(_batch(1.0)))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(batcher.predict(_batch(1.0)))  # starts the dispatcher
        runtime.gate.set()
        await asyncio.gather(busy, queued)
        batcher.close()
        await asyncio.sleep(0.05)  # the dispatcher has nothing queued: it exits
        runtime.gate.clear()
        threading.Timer(0.2, runtime.gate.set).start()  # keep the thread busy so late ones queue
        answers = await asyncio.wait_for(
            asyncio.gather(*[batcher.predict(_batch(float(i))) for i in range(8)]), 5
        )
        executor.shutdown()
        return answers

    answers = asyncio.run(scenario())
    assert [a["prediction"].tolist() for a in answers] == [[2.0 * i] for i in range(8)]


def test_loaded_versions_share_one_budget_of_model_threads() -> None:
    """While version A holds the only model thread, B's requests queue and merge."""
    first, second = EchoRuntime(), EchoRuntime()
    second.gate.set()

    async def scenario() -> list[Outputs]:
        executor = ModelExecutor(1, 1)
        options = BatchingOptions(max_batch_size=64, max_wait_ms=0.0, max_queue_rows=1000)
        metrics = ServingMetrics(CollectorRegistry())
        a = Batcher(first, executor, options, metrics, "a", 1)
        b = Batcher(second, executor, options, metrics, "b", 1)
        busy = asyncio.create_task(a.predict(_batch(1.0)))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(b.predict(_batch(float(i)))) for i in range(2, 5)]
        await asyncio.sleep(0.05)
        first.gate.set()
        answers = await asyncio.gather(busy, *waiting)
        executor.shutdown()
        return answers

    answers = asyncio.run(scenario())
    assert second.calls == [3]  # with a budget per version, B's first call would go alone
    assert [a["prediction"].tolist() for a in answers] == [[2.0], [4.0], [6.0], [8.0]]


class ThreadNamingRuntime:
    """Answers after ``delay_s``, recording the thread each call ran on."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.threads: list[str] = []

    def predict(self, batch: Batch) -> Outputs:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay_s)
        return {"prediction": batch.columns["input"][:, 0]}


@pytest.mark.parametrize(
    ("inline_max_ms", "delay_s", "rows", "on_loop"),
    [
        # unmeasured at first, then known to be fast: the loop
        (5.0, 0.0, [1, 1, 1], [False, True, True]),
        (0.0, 0.0, [1, 1, 1], [False, False, False]),  # turned off
        (5.0, 0.02, [1, 1, 1], [False, False, False]),  # measured, and too slow
        # 64 rows were never timed, one row was: a thread; once timed, the loop, and one
        # row is then bounded by the 64-row time
        (5.0, 0.0, [1, 64, 64, 2], [False, False, True, True]),
        # one request of 200 rows leaves whole: judged by 200 rows (never timed), not by
        # the 64 the batch size allows
        (5.0, 0.0, [64, 64, 200], [False, True, False]),
    ],
)
def test_calls_known_to_be_fast_run_on_the_event_loop(
    inline_max_ms: float, delay_s: float, rows: list[int], on_loop: list[bool]
) -> None:
    runtime = ThreadNamingRuntime(delay_s)

    async def scenario() -> None:
        executor = ModelExecutor(1, 1)
        options = BatchingOptions(64, 0.0, 1000, inline_max_ms=inline_max_ms)
        batcher = Batcher(
            runtime, executor, options, ServingMetrics(CollectorRegistry()), "fast", 1
        )
        for n in rows:
            await batcher.predict(_batch(1.0, n))
        executor.shutdown()

    asyncio.run(scenario())
    loop_thread = threading.current_thread().name
    assert [name == loop_thread for name in runtime.threads] == on_loop
