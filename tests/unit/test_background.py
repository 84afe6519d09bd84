"""The background step loop: woken at once, stopped at once."""

from __future__ import annotations

import asyncio
import logging

from modelport.inference.background import Repeated


def test_a_loop_started_woken_and_stopped_at_once_ends() -> None:
    async def scenario() -> int:
        steps = 0

        async def step() -> None:
            nonlocal steps
            steps += 1
            await asyncio.sleep(0)

        repeated = Repeated("stepping", step, logging.getLogger("test"))
        task = asyncio.create_task(repeated.forever(30.0))
        repeated.wake()
        await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the loop went on after it was cancelled"
        return steps

    assert asyncio.run(scenario()) <= 1


def test_a_woken_loop_steps_before_its_interval() -> None:
    async def scenario() -> None:
        stepped = asyncio.Event()

        async def step() -> None:
            stepped.set()

        repeated = Repeated("stepping", step, logging.getLogger("test"))
        task = asyncio.create_task(repeated.forever(30.0))
        await asyncio.sleep(0)
        repeated.wake()
        await asyncio.wait_for(stepped.wait(), timeout=5)
        task.cancel()

    asyncio.run(scenario())
