"""Token buckets in memory: the limit text, burst then refusal, refill, headers, the LRU bound."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelport.errors import ConfigurationError
from modelport.security.ratelimit import (
    Decision,
    Limit,
    MemoryLimiter,
    RedisLimiter,
    limiter_from_url,
)


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [
        ("10/s", 10.0, 10),
        ("600/m", 10.0, 600),
        ("100/s:200", 100.0, 200),
        (" 36 / h : 2 ", 0.01, 2),
        ("0.5/s", 0.5, 1),
    ],
)
def test_limit_text_gives_rate_per_second_and_burst(text: str, rate: float, burst: int) -> None:
    assert Limit.parse(text) == Limit(rate, burst)


@pytest.mark.parametrize("text", ["", "10", "10/d", "-1/s", "0/s", "10/s:0", "ten/s", "10/s:2.5"])
def test_bad_limit_text_is_a_configuration_error_naming_the_syntax(text: str) -> None:
    with pytest.raises(ConfigurationError, match="rate limit"):
        Limit.parse(text)


def test_a_cost_above_the_burst_is_an_error_not_a_refusal_forever() -> None:
    with pytest.raises(ConfigurationError, match="costs 3 tokens"):
        asyncio.run(MemoryLimiter().acquire("k", Limit(1.0, 2), cost=3))


def test_headers_round_up_and_add_retry_after_only_when_refused() -> None:
    allowed = Decision(True, limit=10, remaining=7, reset_s=0.3, retry_after_s=0.0)
    assert allowed.headers() == [
        ("RateLimit-Limit", "10"),
        ("RateLimit-Remaining", "7"),
        ("RateLimit-Reset", "1"),
    ]
    refused = Decision(False, limit=10, remaining=0, reset_s=2.5, retry_after_s=0.02)
    assert refused.headers()[-2:] == [("RateLimit-Reset", "3"), ("Retry-After", "1")]


async def _take(limiter: MemoryLimiter, bucket: str, limit: Limit, times: int) -> list[Decision]:
    return [await limiter.acquire(bucket, limit) for _ in range(times)]


def test_burst_then_refusal_with_what_the_client_needs_to_wait() -> None:
    limit = Limit(10.0, 5)
    decisions = asyncio.run(_take(MemoryLimiter(), "k", limit, 7))
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    refused = decisions[-1]
    assert refused.limit == 5
    assert refused.retry_after_s == pytest.approx(0.1, abs=0.02)  # one token at 10/s
    assert refused.reset_s == pytest.approx(0.5, abs=0.02)  # five tokens
    assert dict(refused.headers())["Retry-After"] == "1"


def test_buckets_are_independent_and_costs_take_several_tokens() -> None:
    async def scenario() -> tuple[Decision, Decision, Decision]:
        limiter = MemoryLimiter()
        limit = Limit(1.0, 4)
        big = await limiter.acquire("a", limit, cost=3)
        too_big = await limiter.acquire("a", limit, cost=2)
        other = await limiter.acquire("b", limit, cost=4)
        return big, too_big, other

    big, too_big, other = asyncio.run(scenario())
    assert (big.allowed, big.remaining) == (True, 1)
    assert (too_big.allowed, too_big.remaining) == (False, 1)
    assert too_big.retry_after_s == pytest.approx(1.0, abs=0.05)
    assert (other.allowed, other.remaining) == (True, 0)


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    limit = Limit(50.0, 10)

    async def scenario() -> tuple[int, float, int]:
        limiter = MemoryLimiter()
        await _take(limiter, "k", limit, 10)
        drained = time.monotonic()
        await asyncio.sleep(0.1)
        partial = sum(d.allowed for d in await _take(limiter, "k", limit, 20))
        waited = time.monotonic() - drained
        await asyncio.sleep(0.5)  # 25 tokens' worth: capped at 10
        full = sum(d.allowed for d in await _take(limiter, "k", limit, 20))
        return partial, waited, full

    partial, waited, full = asyncio.run(scenario())
    assert abs(partial - 50.0 * waited) <= 1.5
    assert full in (10, 11)  # a token may arrive while the twenty calls run


def test_over_two_seconds_the_allowed_count_is_burst_plus_rate_times_time() -> None:
    limit = Limit(50.0, 20)

    async def hammer() -> tuple[int, float]:
        limiter = MemoryLimiter()
        allowed = 0
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            allowed += (await limiter.acquire("k", limit)).allowed
            await asyncio.sleep(0.001)
        return allowed, time.monotonic() - start

    allowed, elapsed = asyncio.run(hammer())
    expected = limit.burst + limit.rate * elapsed
    assert abs(allowed - expected) <= 0.1 * expected, (allowed, expected)


def test_memory_is_bounded_by_forgetting_the_least_recently_used_bucket() -> None:
    limit = Limit(0.001, 1)  # no refill within the test: a remembered bucket stays empty

    async def scenario() -> list[bool]:
        limiter = MemoryLimiter(max_buckets=3)
        for bucket in ("a", "b", "c"):
            await limiter.acquire(bucket, limit)
        await limiter.acquire("a", limit)  # "a" is now the most recently used
        await limiter.acquire("d", limit)  # evicts "b"
        return [(await limiter.acquire(b, limit)).allowed for b in ("a", "c", "d", "b")]

    # "b" was forgotten, so it starts full again; the others are still empty
    assert asyncio.run(scenario()) == [False, False, False, True]


def test_a_url_chooses_redis_and_no_url_memory() -> None:
    assert isinstance(limiter_from_url(None, fail_closed=False), MemoryLimiter)
    shared = limiter_from_url("redis://127.0.0.1:6379/0", fail_closed=True)
    assert isinstance(shared, RedisLimiter)
    asyncio.run(shared.close())
    with pytest.raises(ConfigurationError, match="redis://"):
        limiter_from_url("memcached://127.0.0.1", fail_closed=False)
