"""Request deadlines: as asyncio.timeout (TimeoutError at the deadline, an outside cancel
stays a cancel), with one timer for every request."""

from __future__ import annotations

import asyncio

import pytest

from modelport.serving.http.deadlines import Deadlines


def test_requests_past_their_deadline_time_out_and_the_others_finish() -> None:
    deadlines = Deadlines(0.05)

    async def request(seconds: float) -> str:
        try:
            with deadlines.enforced():
                await asyncio.sleep(seconds)
        except TimeoutError:
            return "timed out"
        return "answered"

    async def scenario() -> list[str]:
        first = await asyncio.gather(request(0.2), request(0.0), request(0.01), request(0.3))
        again = await request(0.2)  # the shared timer is set again for later requests
        return [*first, again]

    assert asyncio.run(scenario()) == [
        "timed out",
        "answered",
        "answered",
        "timed out",
        "timed out",
    ]


def test_a_cancel_from_outside_is_not_turned_into_a_timeout() -> None:
    deadlines = Deadlines(10)

    async def scenario() -> None:
        async def request() -> None:
            with deadlines.enforced():
                await asyncio.sleep(5)

        task = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_each_event_loop_gets_its_own_timer() -> None:
    deadlines = Deadlines(0.02)

    async def request() -> str:
        try:
            with deadlines.enforced():
                await asyncio.sleep(1)
        except TimeoutError:
            return "timed out"
        return "answered"

    assert asyncio.run(request()) == "timed out"
    assert asyncio.run(request()) == "timed out"
