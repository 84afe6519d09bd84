"""Redis Streams as one consumer of a consumer group sees them: where a stream is, what to
read next (this consumer's own pending entries, entries a dead consumer left pending, new
entries), and how a micro-batch is settled (outputs and dead letters written, inputs acked).

Every Redis failure leaves this module as a modelport error: an unreachable Redis (or one
that refuses for now: loading, read-only during a failover, out of memory) as
:class:`~modelport.errors.BackendUnavailableError` (the consumer waits and tries again), any
other refused command as :class:`~modelport.errors.ConfigurationError` (it stops).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from modelport.errors import BackendUnavailableError, ConfigurationError

if TYPE_CHECKING:
    import redis.asyncio as redis

CONNECT_TIMEOUT_S = 5.0
"""Also added to a blocking read's wait for the socket timeout: the read waits on purpose."""

_PATH = re.compile(r"/(\d+)/(.+)")
END = "0-0"
"""XAUTOCLAIM's cursor at the start, and once it went through the whole pending list."""

Fields = dict[bytes, bytes]
"""An entry's fields, as read and as written."""


@dataclass(frozen=True, slots=True)
class StreamAddress:
    """``redis://[user:password@]host:6379/<db>/<stream>`` (or ``rediss://``)."""

    connection: str
    """The URL redis-py connects with: the address without the stream."""
    shown: str
    """The address without credentials, for logs and messages."""
    stream: str

    @classmethod
    def parse(cls, url: str) -> StreamAddress:
        parts = urlsplit(url)
        match = _PATH.fullmatch(parts.path)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or match is None:
            raise ConfigurationError(
                f"stream address {_without_credentials(url)!r}: expected "
                "redis://host:6379/<db>/<stream>, e.g. redis://127.0.0.1:6379/0/orders"
            )
        db, stream = match.groups()
        connection = urlunsplit(parts._replace(path=f"/{db}", fragment=""))
        host = parts.netloc.rpartition("@")[2]
        return cls(connection, f"{parts.scheme}://{host}/{db}/{unquote(stream)}", unquote(stream))

    def beside(self, stream: str) -> StreamAddress:
        """Another stream on the same Redis database."""
        return StreamAddress(self.connection, f"{self.shown.rsplit('/', 1)[0]}/{stream}", stream)

    def __str__(self) -> str:
        return self.shown


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    fields: Fields
    """Empty when the entry was deleted (trimmed) while it was pending."""
    deliveries: int = 1
    """How many times the group has handed it out, this time included."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a micro-batch leaves behind, written as one transaction where Redis allows."""

    outputs: Sequence[Fields]
    dead: Sequence[Fields]
    acked: Sequence[str]
    """Source ids done with: answered, dead-lettered, or deleted while pending."""


class GroupStreams:
    """The source stream read through one consumer of a group, the sink and the dead-letter
    stream written."""

    def __init__(
        self,
        source: StreamAddress,
        sink: StreamAddress,
        dead_letter: str,
        group: str,
        consumer: str,
        *,
        block_ms: int,
        sink_maxlen: int | None = None,
    ) -> None:
        """``dead_letter``: a stream beside the source, so dead letters and acks go together."""
        self.source, self.sink, self.dead_letter = source, sink, source.beside(dead_letter)
        self.group, self.consumer = group, consumer
        self._block_ms = block_ms
        self._sink_maxlen = sink_maxlen
        self._client: redis.Redis = _client(source, CONNECT_TIMEOUT_S + block_ms / 1000)
        self._sink_client = (
            self._client
            if sink.connection == source.connection
            else _client(sink, CONNECT_TIMEOUT_S)
        )

    async def prepare(self) -> None:
        """Create the group (from the stream's first entry) unless it exists, and refuse
        output streams that are keys of another type: inside a transaction, a failed write
        would not stop the ack beside it."""
        await self._create_group()
        for client, address in ((self._sink_client, self.sink), (self._client, self.dead_letter)):
            with self._translated(f"checking {address}"):
                kind = await client.type(address.stream)
            if kind not in (b"none", b"stream"):
                raise ConfigurationError(f"{address} is a Redis {_text(kind)}, not a stream")

    async def own_pending(self, count: int) -> list[Message]:
        """The oldest of the entries this consumer was handed and never acked (it was killed,
        or stopped while Redis was away)."""
        return await self._counted(await self._read("0", count, block_ms=None))

    async def claim(self, cursor: str, count: int, min_idle_ms: int) -> tuple[str, list[Message]]:
        """Entries idle in other consumers' pending lists for ``min_idle_ms``, now this
        consumer's, from ``cursor`` on; the cursor to go on from (``0-0``: the end)."""
        found = await self._in_group(
            "claiming pending entries",
            lambda: self._client.xautoclaim(
                self.source.stream, self.group, self.consumer, min_idle_ms, cursor, count=count
            ),
        )
        if found is None:
            return END, []
        following, entries = found[0], found[1]
        return _text(following), await self._counted(_messages(entries))

    async def keep(self, ids: Sequence[str]) -> None:
        """Reset the idle time of entries this consumer is answering, so that no other
        consumer takes them for abandoned (``XCLAIM … JUSTID``: no delivery is counted)."""
        with self._translated("keeping entries in flight"):
            await self._client.xclaim(
                self.source.stream, self.group, self.consumer, 0, list(ids), justid=True
            )

    async def new(self, count: int) -> list[Message]:
        """Entries no consumer of the group was handed yet; waits up to the block time."""
        return await self._read(">", count, block_ms=self._block_ms)

    async def settle(self, settlement: Settlement) -> None:
        """Write the outputs and dead letters, then ack. One MULTI/EXEC when the sink is on
        the source's Redis database; otherwise the outputs first, so nothing is acked
        unanswered."""
        apart = self._sink_client is not self._client
        pipe: Any  # redis-py's command types take no dict[bytes, bytes]
        with self._translated(f"writing to {self.sink}"):
            if apart and settlement.outputs:
                async with self._sink_client.pipeline(transaction=True) as pipe:
                    self._add_outputs(pipe, settlement.outputs)
                    await pipe.execute()
            async with self._client.pipeline(transaction=True) as pipe:
                if not apart:
                    self._add_outputs(pipe, settlement.outputs)
                for fields in settlement.dead:
                    pipe.xadd(self.dead_letter.stream, fields)
                if settlement.acked:
                    pipe.xack(self.source.stream, self.group, *settlement.acked)
                await pipe.execute()

    async def close(self) -> None:
        if self._sink_client is not self._client:
            await self._sink_client.aclose()
        await self._client.aclose()

    def _add_outputs(self, pipe: Any, outputs: Sequence[Fields]) -> None:
        for fields in outputs:
            pipe.xadd(self.sink.stream, fields, maxlen=self._sink_maxlen, approximate=True)

    async def _create_group(self) -> None:
        from redis.exceptions import ResponseError

        with self._translated(f"creating group {self.group}"):
            try:
                await self._client.xgroup_create(self.source.stream, self.group, "0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(self, start: str, count: int, block_ms: int | None) -> list[Message]:
        streams: dict[Any, Any] = {self.source.stream: start}
        found = await self._in_group(
            f"reading {self.source}",
            lambda: self._client.xreadgroup(
                self.group, self.consumer, streams, count=count, block=block_ms
            ),
        )
        return _messages(found[0][1]) if found else []

    async def _in_group(self, doing: str, command: Callable[[], Awaitable[Any]]) -> Any:
        """``command``'s reply; None when the group was gone (its stream deleted, or Redis
        restarted without persistence): it is then created again, as at start."""
        from redis.exceptions import ResponseError

        with self._translated(doing):
            try:
                return await command()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
        await self._create_group()
        return None

    async def _counted(self, messages: list[Message]) -> list[Message]:
        """``messages`` with their delivery counts (XPENDING), one round trip for all."""
        if not messages:
            return messages
        with self._translated("counting deliveries"):
            async with self._client.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.xpending_range(self.source.stream, self.group, message.id, message.id, 1)
                found = await pipe.execute()
        counts = {_text(p[0]["message_id"]): int(p[0]["times_delivered"]) for p in found if p}
        return [Message(m.id, m.fields, counts.get(m.id, m.deliveries)) for m in messages]

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Redis errors as modelport's: what a wait may cure (unreachable, loading, a
        failover's read-only replica, out of memory) passes; any other refusal stops."""
        from redis.exceptions import (
            AuthenticationError,
            ClusterDownError,
            OutOfMemoryError,
            ReadOnlyError,
            RedisError,
            ResponseError,
            TryAgainError,
        )

        passing = (ReadOnlyError, OutOfMemoryError, TryAgainError, ClusterDownError)
        try:
            yield
        except (AuthenticationError, ResponseError) as exc:
            if isinstance(exc, passing):
                raise BackendUnavailableError(f"{doing}: Redis refused for now: {exc}") from exc
            raise ConfigurationError(f"{doing}: Redis refused: {exc}") from exc
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError(
                f"{doing}: Redis unreachable ({type(exc).__name__}: {exc})"
            ) from exc


def _client(address: StreamAddress, socket_timeout_s: float) -> redis.Redis:
    import redis.asyncio as redis

    return redis.Redis.from_url(
        address.connection,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )


def _messages(entries: Sequence[tuple[bytes, Fields | None]]) -> list[Message]:
    return [Message(_text(entry_id), dict(fields or {})) for entry_id, fields in entries]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
