"""The inference service: the one pipeline under every transport.

A transport (HTTP route, gRPC method, job, stream message) makes an
:class:`~modelport.inference.context.InferenceContext` and calls :meth:`InferenceService.infer`
with what the caller named and a decoder from :mod:`modelport.codecs`. The service resolves the
target through the router, decodes and checks the input against the target's signature (off
the event loop when the body is large), answers from the cache or through the version's
batcher, and reports the outcome to every observer. The transport only encodes the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from modelport.codecs import Decoded
from modelport.errors import InvalidInputError, ModelportError, NotFoundError
from modelport.inference.cache import ResponseCache, cache_key
from modelport.inference.context import InferenceContext, Transport, unit_id_from
from modelport.inference.metrics import ServingMetrics
from modelport.inference.observers import LifecycleObserver, Observer, Outcome, notify
from modelport.inference.router import Router, Target
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature

T = TypeVar("T")

Decoder = Callable[[Signature], Decoded[T]]
"""Turns a request body into named arrays for the target's signature (a codec call)."""

OFFLOAD_BYTES = 256 * 1024
"""Bodies from this size are decoded and checked on a thread: parsing 10 MB of JSON or CSV
on the event loop would stall every other request, health probes included."""


class Admission(Protocol):
    """Whether the caller may use ``model`` (API keys, rate limits); raises the 401/403/429
    otherwise. ``None``: the reference names nothing served, and a caller who could not use
    it anyway must not learn that from a 404."""

    async def admit(self, ctx: InferenceContext, model: str | None) -> None: ...

    def needed(self, model: str) -> bool:
        """False when :meth:`admit` would surely let a call to ``model`` through uncounted
        (no keys, no budget): the request then skips it."""
        ...


class Pieces(Protocol):
    """How a long request (a job) is predicted: ``rows`` at a time, so online requests queue
    between its pieces rather than behind all of it. ``done`` hears of each piece and may
    raise to stop the rest (a job cancelled while it runs)."""

    @property
    def rows(self) -> int: ...

    async def done(self, rows: int, total: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    target: Target
    extras: T
    outputs: Outputs


class InferenceService:
    def __init__(
        self,
        router: Router,
        metrics: ServingMetrics,
        cache: ResponseCache,
        cached_models: frozenset[str],
        observers: Sequence[Observer],
        admission: Admission | None = None,
    ) -> None:
        self.router = router
        self._admission = admission
        self._metrics = metrics
        self._cache = cache
        self._cached_models = cached_models
        self._observers = tuple(observers)
        self._in_flight = {t: metrics.in_flight.labels(t.value) for t in Transport}

    async def start(self) -> None:
        for observer in self._observers:
            if isinstance(observer, LifecycleObserver):
                await observer.start()

    async def stop(self) -> None:
        """Flush observers that queue (graceful shutdown loses no outcome)."""
        for observer in self._observers:
            if isinstance(observer, LifecycleObserver):
                await observer.stop()

    def resolve(self, reference: str | None, version: int | None, ctx: InferenceContext) -> Target:
        return self.router.resolve(reference, version, ctx)

    async def infer(
        self,
        ctx: InferenceContext,
        reference: str | None,
        version: int | None,
        decode: Decoder[T],
        size: int = 0,
        pieces: Pieces | None = None,
    ) -> Answer[T]:
        """Resolve, decode, check, predict; every outcome reaches the observers."""
        ctx.reference = reference or ""
        batch: Batch | None = None
        in_flight = self._in_flight[ctx.transport]
        in_flight.inc()
        try:
            target = await self._admitted(reference, version, ctx)
            if target.unit_field is not None and ctx.unit_id is None:
                target = await self._by_unit(target, reference, version, ctx, decode, size)
            with target.loaded.serving():
                # _checked_for written out: no coroutine per request on the hot path
                if size >= OFFLOAD_BYTES:
                    decoded, checked = await asyncio.to_thread(_checked, target.signature, decode)
                else:
                    decoded, checked = _checked(target.signature, decode)
                batch = checked
                if pieces is None:
                    outputs = await self.predict(target, checked, ctx)
                else:
                    outputs = await self._in_pieces(target, checked, ctx, pieces)
        except ModelportError as exc:
            self._report(ctx, batch, None, exc)
            raise
        except Exception:
            self._report(ctx, batch, None, ModelportError("unexpected error"))
            raise
        finally:
            in_flight.dec()
        self._report(ctx, batch, outputs, None)
        return Answer(target, decoded.extras, outputs)

    async def check(
        self,
        ctx: InferenceContext,
        reference: str | None,
        version: int | None,
        decode: Decoder[T],
        size: int = 0,
    ) -> Target:
        """Everything :meth:`infer` would do before predicting (admission, routing, decoding,
        the signature check), so a request kept for later (a job) is refused now if it ever
        will be. Nothing is predicted and observers hear nothing."""
        target = await self._admitted(reference, version, ctx)
        await _checked_for(target, decode, size)
        return target

    async def _admitted(
        self, reference: str | None, version: int | None, ctx: InferenceContext
    ) -> Target:
        if self._admission is None or ctx.admitted:
            return self.router.resolve(reference, version, ctx)
        try:
            target = self.router.resolve(reference, version, ctx)
        except NotFoundError:
            await self._admission.admit(ctx, None)
            raise
        # a deployment's keys, public flag and budget go by its name, whatever slot answers
        model = ctx.deployment or target.record.name
        if self._admission.needed(model):
            await self._admission.admit(ctx, model)
        return target

    async def _by_unit(
        self,
        target: Target,
        reference: str | None,
        version: int | None,
        ctx: InferenceContext,
        decode: Decoder[T],
        size: int,
    ) -> Target:
        """Route again by the unit id an input column carries (a deployment sticky by body
        field): the first row's value decides for the whole request."""
        field = target.unit_field
        assert field is not None
        _, checked = await _checked_for(target, decode, size)
        column = checked.columns.get(field)
        if column is None or not checked.n_rows:
            return target
        ctx.unit_id = unit_id_from(str(column[0]))
        return self.router.resolve(reference, version, ctx)

    async def predict(self, target: Target, batch: Batch, ctx: InferenceContext) -> Outputs:
        """A checked batch through the cache (when the model opts in) and the batcher."""
        record = target.record
        key = cache_key(record, batch) if record.name in self._cached_models else None
        if key is not None:
            hit = await self._cache.get(key)
            self._metrics.cache.labels(record.name, "miss" if hit is None else "hit").inc()
            if hit is not None:
                ctx.cached = True
                return hit
        outputs = await target.loaded.batcher.predict(batch)
        if key is not None:
            await self._cache.put(key, outputs)
        return outputs

    async def _in_pieces(
        self, target: Target, batch: Batch, ctx: InferenceContext, pieces: Pieces
    ) -> Outputs:
        total = batch.n_rows
        parts: list[Outputs] = []
        for start in range(0, max(total, 1), pieces.rows):  # an empty batch is one piece
            stop = min(start + pieces.rows, total)
            parts.append(await self.predict(target, batch.slice(start, stop), ctx))
            await pieces.done(stop, total)
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _report(
        self,
        ctx: InferenceContext,
        batch: Batch | None,
        outputs: Outputs | None,
        error: ModelportError | None,
    ) -> None:
        elapsed = time.perf_counter() - ctx.started
        ctx.reported = True
        notify(self._observers, Outcome(ctx, batch, outputs, error, elapsed))


async def _checked_for(target: Target, decode: Decoder[T], size: int) -> tuple[Decoded[T], Batch]:
    """:func:`_checked` for ``target``, on a thread when the body is large."""
    if size >= OFFLOAD_BYTES:
        return await asyncio.to_thread(_checked, target.signature, decode)
    return _checked(target.signature, decode)


def _checked(signature: Signature, decode: Decoder[T]) -> tuple[Decoded[T], Batch]:
    """Decode, then check against the signature; a codec may sharpen the signature's error."""
    decoded = decode(signature)
    try:
        return decoded, signature.conform(decoded.arrays, decoded.pointers)
    except InvalidInputError as exc:
        if decoded.locate is None:
            raise
        raise decoded.locate(exc) from exc
