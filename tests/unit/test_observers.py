"""Observers: a slow or failing observer never holds a request; queued outcomes are flushed."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from modelport.errors import InvalidInputError
from modelport.inference import InferenceContext, Outcome, QueuedObserver, Transport
from modelport.inference.observers import notify


def _outcome(i: int) -> Outcome:
    ctx = InferenceContext(f"r{i}", Transport.V1)
    return Outcome(ctx, None, None, None if i % 2 else InvalidInputError("bad"), 0.001)


def _dropped(registry: CollectorRegistry | None = None) -> Counter:
    return Counter(
        "dropped", "outcomes dropped", ["observer"], registry=registry or CollectorRegistry()
    )


def test_a_full_queue_drops_and_counts_and_stop_flushes_the_rest() -> None:
    written: list[str] = []
    gate = asyncio.Event()

    async def sink(outcomes: list[Outcome]) -> None:
        await gate.wait()
        written.extend(o.context.request_id for o in outcomes)

    registry = CollectorRegistry()
    dropped = _dropped(registry)

    async def scenario() -> None:
        observer = QueuedObserver("log", sink, dropped, max_queued=5, max_batch=2)
        await observer.start()
        for i in range(8):  # the sink is stuck on r0, which still counts: r1-r4 fill the rest
            observer.observe(_outcome(i))
            await asyncio.sleep(0)
        assert observer.queued == 5
        gate.set()
        await observer.stop()

    asyncio.run(scenario())
    assert written == [f"r{i}" for i in range(5)]
    assert registry.get_sample_value("dropped_total", {"observer": "log"}) == 3


def test_a_failing_observer_does_not_stop_the_others() -> None:
    seen: list[int] = []

    class Broken:
        def observe(self, outcome: Outcome) -> None:
            raise RuntimeError("observer bug")

    class Counting:
        def observe(self, outcome: Outcome) -> None:
            seen.append(outcome.status)

    notify([Broken(), Counting()], _outcome(1))
    notify([Broken(), Counting()], _outcome(2))
    assert seen == [200, 422]


def test_a_failing_sink_does_not_stop_the_queue() -> None:
    calls: list[int] = []

    async def sink(outcomes: list[Outcome]) -> None:
        calls.append(len(outcomes))
        if len(calls) == 1:
            raise OSError("disk full")

    async def scenario() -> None:
        observer = QueuedObserver("log", sink, _dropped(), max_batch=1)
        await observer.start()
        observer.observe(_outcome(1))
        observer.observe(_outcome(2))
        await observer.stop()

    asyncio.run(scenario())
    assert calls == [1, 1]


def test_lingering_hands_over_what_arrived_meanwhile_as_one_batch() -> None:
    def batches(linger_s: float) -> list[int]:
        sizes: list[int] = []

        async def sink(items: list[int]) -> None:
            sizes.append(len(items))

        async def scenario() -> None:
            observer = QueuedObserver("shadow", sink, _dropped(), linger_s=linger_s)
            await observer.start()
            for i in range(5):  # arriving over ~10 ms
                observer.observe(i)
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.1)
            await observer.stop()

        asyncio.run(scenario())
        return sizes

    assert batches(0.05) == [5]
    assert len(batches(0.0)) > 1  # without lingering, the first item leaves alone
