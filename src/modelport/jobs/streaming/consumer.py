"""The stream consumer: reads a Redis stream through a consumer group in micro-batches,
predicts each message, writes one output entry per message, and only then acks it.

Delivery is at least once. A micro-batch's outputs, dead letters and acks go in one
transaction, so a consumer killed at any point leaves each message either answered and acked
or pending; a pending message is read again by the same consumer when it restarts (its own
pending entries come first) or claimed by another consumer of the group once it has been idle
for ``min_idle_ms`` (a live consumer keeps its micro-batch from going idle, however slow). No
more than ``batch`` messages are ever read and unanswered.

A message that can never be answered (undecodable, invalid for the signature, the model
raises on it, or handed out more than ``max_deliveries`` times) goes to the dead-letter
stream and is acked. A failure that may pass (Redis unreachable, model not loaded, queue
full) acks nothing: the micro-batch is tried again with backoff until it succeeds or the
consumer is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from modelport.config import Settings
from modelport.errors import ModelportError, StorageUnavailableError
from modelport.jobs.formats import JobFormat
from modelport.jobs.streaming.scoring import MessageScorer, Outcome
from modelport.jobs.streaming.source import (
    END,
    GroupStreams,
    Message,
    Settlement,
    StreamAddress,
)
from modelport.plane import DataPlane
from modelport.registry import ModelAddress

log = logging.getLogger("modelport.jobs.streaming")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What ``modelport stream`` was asked for (docs/streaming.md explains each option)."""

    model: str
    """``name``, ``name/3`` or ``name@alias``; an alias is followed as a server follows it."""
    source: StreamAddress
    sink: StreamAddress
    dead_letter: str
    """A stream on the source's Redis database."""
    group: str
    consumer: str
    field: bytes = b"body"
    format: JobFormat | None = None
    batch: int = 64
    block_ms: int = 1000
    min_idle_ms: int = 30_000
    max_deliveries: int = 5
    sink_maxlen: int | None = None

    def streams(self) -> GroupStreams:
        return GroupStreams(
            self.source,
            self.sink,
            self.dead_letter,
            self.group,
            self.consumer,
            block_ms=self.block_ms,
            sink_maxlen=self.sink_maxlen,
        )


@dataclass(slots=True)
class Counts:
    """Messages handed to this consumer, answers written, dead letters written."""

    read: int = 0
    written: int = 0
    dead_lettered: int = 0


class Backoff:
    """Waits after a failure that may pass, longer each time; says once when an outage
    starts and once when it ends. A stop cuts the wait short."""

    def __init__(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        self._delay_s = BACKOFF_FIRST_S
        self._failing = False

    async def after(self, problem: str) -> None:
        if not self._failing:
            log.warning("%s; trying again with backoff", problem)
        self._failing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._delay_s)
        self._delay_s = min(self._delay_s * 2, BACKOFF_MAX_S)

    def succeeded(self) -> None:
        if self._failing:
            log.info("stream consumer works again")
        self._failing = False
        self._delay_s = BACKOFF_FIRST_S


class StreamConsumer:
    def __init__(
        self,
        streams: GroupStreams,
        scorer: MessageScorer,
        options: StreamOptions,
        stopping: asyncio.Event,
    ) -> None:
        self._streams = streams
        self._scorer = scorer
        self._options = options
        self._stopping = stopping
        self._backoff = Backoff(stopping)
        self.counts = Counts()

    async def run(self) -> None:
        """Until ``stopping`` is set; the micro-batch in flight then is finished first."""
        await self._steadily(self._streams.prepare)
        await self._steadily(self._own_pending)
        claimed_at = -math.inf
        while not self._stopping.is_set():
            if time.monotonic() - claimed_at >= self._options.min_idle_ms / 2000:
                await self._steadily(self._abandoned)
                claimed_at = time.monotonic()
            await self._steadily(self._new)

    async def _steadily(self, step: Callable[[], Awaitable[None]]) -> None:
        """One step, tried again with backoff while Redis is unreachable."""
        while not self._stopping.is_set():
            try:
                await step()
            except StorageUnavailableError as exc:
                await self._backoff.after(exc.detail)
            else:
                return

    async def _own_pending(self) -> None:
        """What this consumer (this name) was handed before and never acked."""
        while not self._stopping.is_set():
            messages = await self._streams.own_pending(self._options.batch)
            if not messages:
                return
            log.info("reading %d entries this consumer left pending", len(messages))
            await self._handle(messages)

    async def _abandoned(self) -> None:
        """What other consumers of the group were handed and left idle (killed, most likely)."""
        cursor = END
        while not self._stopping.is_set():
            cursor, messages = await self._streams.claim(
                cursor, self._options.batch, self._options.min_idle_ms
            )
            if messages:
                log.info("claimed %d entries other consumers left pending", len(messages))
                await self._handle(messages)
            if cursor == END:
                return

    async def _new(self) -> None:
        messages = await self._streams.new(self._options.batch)
        self._backoff.succeeded()
        if messages:
            await self._handle(messages)

    async def _handle(self, messages: list[Message]) -> None:
        """Answer a micro-batch, its entries kept from other consumers meanwhile."""
        self.counts.read += len(messages)
        keeping = asyncio.create_task(self._keep([m.id for m in messages]))
        try:
            await self._answer(messages)
        finally:
            keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping

    async def _keep(self, ids: list[str]) -> None:
        """Every third of ``min_idle_ms``: a slow micro-batch (a slow model, a failure that
        passes) is neither claimed by another consumer nor counted as handed out again."""
        while True:
            await asyncio.sleep(self._options.min_idle_ms / 3000)
            try:
                await self._streams.keep(ids)
            except ModelportError as exc:  # no harm beyond a claim, which is answered twice
                log.warning("could not keep the micro-batch in flight: %s", exc.detail)

    async def _answer(self, messages: list[Message]) -> None:
        """Predict (concurrently: the model's batcher merges the requests), settle what is
        done, and try again what may pass until it is done or we stop."""
        left = messages
        while left:
            outcomes = await asyncio.gather(*(self._outcome(m) for m in left))
            settled = [o for o in outcomes if o.passing is None]
            if settled and not await self._settle(settled):
                return
            passing = [o for o in outcomes if o.passing is not None]
            left = [o.message for o in passing]
            if left:
                if self._stopping.is_set():
                    log.info("stopping: %d entries stay pending, to be read again", len(left))
                    return
                error = passing[0].passing
                assert error is not None
                await self._backoff.after(f"{len(left)} entries not answered: {error.detail}")

    async def _outcome(self, message: Message) -> Outcome:
        if not message.fields:
            return Outcome(message)
        deliveries, most = message.deliveries, self._options.max_deliveries
        if deliveries > most:
            error = ModelportError(
                f"handed out {deliveries} times without an answer (more than {most}): the "
                "consumers it was handed to stopped before answering it"
            )
            return Outcome(message, dead=self._scorer.dead_letter(message, error))
        return await self._scorer.score(message)

    async def _settle(self, outcomes: list[Outcome]) -> bool:
        """Write and ack; False when Redis was unreachable until the consumer stopped (the
        messages stay pending and are read again)."""
        settlement = Settlement(
            [o.output for o in outcomes if o.output is not None],
            [o.dead for o in outcomes if o.dead is not None],
            [o.message.id for o in outcomes],
        )
        while True:
            try:
                await self._streams.settle(settlement)
            except StorageUnavailableError as exc:
                if self._stopping.is_set():
                    log.error("stopping: %s; %d entries stay pending", exc.detail, len(outcomes))
                    return False
                await self._backoff.after(exc.detail)
            else:
                self._backoff.succeeded()
                self.counts.written += len(settlement.outputs)
                self.counts.dead_lettered += len(settlement.dead)
                return True


async def consume(
    settings: Settings,
    options: StreamOptions,
    stopping: asyncio.Event,
    started: Callable[[str], None] | None = None,
) -> Counts:
    """Load the model, then consume until ``stopping`` is set; what was read and written.
    ``started`` hears what was loaded (``iris@production -> v3``) before the first read."""
    address = ModelAddress.parse(options.model)
    data = DataPlane(settings, [options.model])
    streams = options.streams()
    try:
        async with data.started() as service:
            # the model follows the registry meanwhile, as a server's does
            watcher = asyncio.create_task(data.follower.watch(settings.reload_interval_s))
            try:
                scorer = MessageScorer(
                    service, address.name, options.source.stream, options.field, options.format
                )
                consumer = StreamConsumer(streams, scorer, options, stopping)
                if started is not None:
                    loaded = data.router.route(address.name).current
                    version = f" -> v{loaded.record.version}" if loaded else ""
                    started(f"{address}{version}")
                await consumer.run()
                return consumer.counts
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    finally:
        await streams.close()
