"""Token-bucket rate limits, per process in memory or shared by every worker through Redis.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; a request takes
``cost`` tokens or is refused. In Redis one Lua script reads, refills and writes a bucket
atomically on the server's own clock, so workers and replicas share one budget and agree on
time. A Redis outage lets requests through (or refuses them, with ``fail_closed``) instead of
failing them, and a breaker leaves Redis alone for a second between tries.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from modelport.errors import ConfigurationError
from modelport.inference.breaker import Breaker

if TYPE_CHECKING:
    import redis.asyncio as redis
    from redis.commands.core import AsyncScript

log = logging.getLogger("modelport.security")

_LIMIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*(?::\s*(\d+)\s*)?")
_PERIOD_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` tokens per second, at most ``burst`` at once."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigurationError(f"rate limit: rate must be > 0 per second, not {self.rate}")
        if self.burst < 1:
            raise ConfigurationError(f"rate limit: burst must be at least 1, not {self.burst}")

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"<count>/<s|m|h>[:<burst>]"``: ``"10/s"``, ``"600/m"``, ``"100/s:200"``.

        The burst defaults to the count: ``"600/m"`` allows 600 at once, then 10 a second.
        """
        match = _LIMIT.fullmatch(text)
        if match is None:
            raise ConfigurationError(
                f"rate limit {text!r}: expected <count>/<s|m|h>[:<burst>], e.g. '100/s:200'"
            )
        count, unit, burst = match.groups()
        return cls(float(count) / _PERIOD_S[unit], int(burst) if burst else math.ceil(float(count)))


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request, with what the client needs to pace itself."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit-*`` fields of the IETF draft (whole seconds, rounded up), ``Retry-After``
        when refused."""
        fields = [
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", str(self.remaining)),
            ("RateLimit-Reset", str(math.ceil(self.reset_s))),
        ]
        if not self.allowed:
            fields.append(("Retry-After", str(max(1, math.ceil(self.retry_after_s)))))
        return fields


class RateLimiter(Protocol):
    async def acquire(self, bucket: str, limit: Limit, cost: int = 1) -> Decision: ...

    async def close(self) -> None: ...


def _decide(limit: Limit, tokens: float, allowed: bool, cost: int) -> Decision:
    """The decision for a bucket left with ``tokens`` after the request was (not) served."""
    return Decision(
        allowed=allowed,
        limit=limit.burst,
        remaining=max(0, math.floor(tokens)),
        reset_s=max(0.0, (limit.burst - tokens) / limit.rate),
        retry_after_s=0.0 if allowed else max(0.0, (cost - tokens) / limit.rate),
    )


def _check_cost(limit: Limit, cost: int) -> None:
    # a cost above the burst could never be served: say so instead of refusing forever
    if not 1 <= cost <= limit.burst:
        raise ConfigurationError(
            f"rate limit: a request costs {cost} tokens, outside 1..{limit.burst} (the burst)"
        )


class MemoryLimiter:
    """Buckets of this process only; the least recently used go beyond ``max_buckets``.

    The bound keeps a client rotating keys from growing memory without end; an evicted bucket
    comes back full, which only an idle or abusive key can notice.
    """

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_buckets = max_buckets

    async def acquire(self, bucket: str, limit: Limit, cost: int = 1) -> Decision:
        _check_cost(limit, cost)
        now = time.monotonic()
        tokens, last = self._buckets.pop(bucket, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - last) * limit.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[bucket] = (tokens, now)
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        return _decide(limit, tokens, allowed, cost)

    async def close(self) -> None:
        self._buckets.clear()


# KEYS[1] the bucket; ARGV rate (tokens/s), burst, cost. Returns {allowed, tokens left} (tokens
# as text: Redis truncates Lua numbers to integers). TIME is the server's clock, the one clock
# every worker shares; max() keeps a failover to a replica slightly behind from minting tokens.
_SCRIPT = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]), tonumber(state[2])
if tokens == nil or ts == nil then
  tokens, ts = burst, now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisLimiter:
    """Buckets in Redis, shared by every worker and replica that uses the same Redis.

    Timeouts are short because a limit check sits in front of every request; while Redis is
    failing the breaker skips it, and requests are allowed (or refused with ``fail_closed``).
    """

    def __init__(
        self, url: str, fail_closed: bool = False, prefix: str = "modelport:ratelimit:"
    ) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError

        # one immediate retry, on a broken connection only: it reconnects a pooled connection
        # that a Redis restart closed, without doubling the wait on a hanging Redis
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=0.25,
            socket_connect_timeout=0.25,
            retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        )
        self._script: AsyncScript = self._client.register_script(_SCRIPT)
        self._fail_closed = fail_closed
        self._prefix = prefix
        fallback = "refusing every request" if fail_closed else "allowing every request"
        self._breaker = Breaker("rate limiter (Redis)", 1.0, log, fallback)

    async def acquire(self, bucket: str, limit: Limit, cost: int = 1) -> Decision:
        from redis.exceptions import RedisError

        _check_cost(limit, cost)
        if not self._breaker.allow():
            return self._unavailable(limit)
        try:
            allowed, tokens = await self._script(
                keys=[self._prefix + bucket], args=[repr(limit.rate), limit.burst, cost]
            )
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            return self._unavailable(limit)
        self._breaker.succeeded()
        return _decide(limit, float(tokens), allowed == 1, cost)

    def _unavailable(self, limit: Limit) -> Decision:
        if self._fail_closed:
            return Decision(False, limit.burst, 0, reset_s=1.0, retry_after_s=1.0)
        return Decision(True, limit.burst, limit.burst, reset_s=0.0, retry_after_s=0.0)

    async def close(self) -> None:
        await self._client.aclose()


def limiter_from_url(url: str | None, fail_closed: bool) -> RateLimiter:
    """In memory without a URL (each worker its own budget), else shared through Redis."""
    if url is None:
        return MemoryLimiter()
    if url.startswith(("redis://", "rediss://")):
        return RedisLimiter(url, fail_closed=fail_closed)
    scheme = url.partition(":")[0]  # never the rest: a URL may carry a password
    raise ConfigurationError(
        f"rate limit store: expected a redis:// or rediss:// URL, not {scheme}:"
    )
