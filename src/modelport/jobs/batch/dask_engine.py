"""The Dask engine: one task per part, scored by the workers of a ``distributed`` cluster.

The client plans and finishes the run as with the local engine; only the parts left go to
the cluster, one task each (``pure=False``, keyed by the run and the part). A worker scores
its parts with the same :class:`PartScorer` as the local engine, over one data plane per
worker process: a worker plugin registered for the run carries the settings and the plan to
every worker once (not with each task), loads the model there as it is registered, keeps the
plane on an event loop in a thread of its own (the worker's own loop must stay free for the
scheduler's messages), and closes it when the run unregisters it. That plugin is the only
state the engine leaves on a worker, and only for the run's duration.

Workers use the settings sent to them, not their own environment, so they must reach the
same registry database and artifact store (PostgreSQL and S3, or one shared folder) and the
input and output URLs (an object store, or a folder mounted at the same path everywhere). A
modelport error in a task (bad input, a model error) fails the run as the same class on the
client; the parts written by then stay, so running again resumes.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any, TypeVar

import fsspec
from distributed import Client, Worker, as_completed, get_worker
from distributed.comm.core import connect
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.security import Security

from modelport.config import Settings
from modelport.errors import ConfigurationError, JobCancelledError
from modelport.jobs.batch.parts import Part
from modelport.jobs.batch.scoring import PartScorer, Plan, Progress, part_scorer

T = TypeVar("T")


def score_on_cluster(
    settings: Settings, plan: Plan, progress: Progress | None, *, scheduler: str
) -> tuple[int, float]:
    """Every part left, as tasks on the cluster behind ``scheduler``; the rows scored and
    the seconds scoring took (the model loaded on every worker). ``progress`` hears of each
    part as it finishes."""
    if not plan.todo:
        return 0, 0.0
    settings, plan = _portable(settings, plan)
    name = f"modelport-batch-{plan.run_id}"
    with _connect(scheduler) as client:
        try:
            client.register_plugin(_RunPlugin(settings, plan), name=name)
            started = time.perf_counter()
            futures = [
                client.submit(_score_part, name, part, key=f"{name}-{part.name}", pure=False)
                for part in plan.todo
            ]
            rows = 0
            try:
                for done in as_completed(futures, loop=client.loop):
                    scored: int = done.result()
                    done.release()  # its part is written: a worker lost later owes nothing
                    rows += scored
                    if progress is not None:
                        progress(scored)
            except BaseException:
                client.cancel(futures)  # parts not started yet are never scored
                raise
            return rows, time.perf_counter() - started
        finally:
            client.unregister_worker_plugin(name)


def _connect(scheduler: str) -> Client:
    """A client of the scheduler, once it is known to answer: a ``Client`` that fails to
    start holds up the process's exit for twice the connect timeout. Both connect with the
    TLS settings of Dask's configuration (``distributed.comm.tls``), if any."""
    security = Security()
    try:
        asyncio.run(_answers(scheduler, security))
    except (OSError, ValueError) as exc:  # unreachable, or not an address
        raise ConfigurationError(f"no Dask scheduler reached at {scheduler}: {exc}") from exc
    return Client(scheduler, set_as_default=False, security=security)


async def _answers(scheduler: str, security: Security) -> None:
    options = security.get_connection_args("client")
    comm = await connect(scheduler, **options)
    await comm.close()


def _portable(settings: Settings, plan: Plan) -> tuple[Settings, Plan]:
    """The settings and plan as the client means them, whatever a worker's working folder:
    relative local paths (the default home, ``-o scored/``) made absolute here."""
    job = replace(plan.job, input=_absolute(plan.job.input), output=_absolute(plan.job.output))
    return settings.model_copy(update={"home": settings.home.resolve()}), replace(plan, job=job)


def _absolute(url: str) -> str:
    protocol, _ = fsspec.core.split_protocol(url)
    return url if protocol else os.path.abspath(url)


def _score_part(plugin: str, part: Part) -> int:
    """A task: one part, through the run's plane on this worker; its row count."""
    run = get_worker().plugins[plugin]
    assert isinstance(run, _RunPlugin)
    return run.score(part)


class _RunPlugin(WorkerPlugin):
    """One run on one worker: its settings and plan (pickled once per worker), then the
    worker's plane for as long as the run lasts."""

    def __init__(self, settings: Settings, plan: Plan) -> None:
        self._settings = settings
        self._plan = plan
        self._plane: _WorkerPlane | None = None

    async def setup(self, worker: Worker) -> None:
        """Load the model (a failure reaches the client as it registers the plugin)."""
        self._plane = _WorkerPlane(f"modelport-{self._plan.run_id}")
        await self._plane.open(self._settings, self._plan)

    def score(self, part: Part) -> int:
        assert self._plane is not None
        return self._plane.score(part)

    async def teardown(self, worker: Worker) -> None:
        if self._plane is not None:
            await self._plane.close()


class _WorkerPlane:
    """A part scorer over a data plane on an event loop in a thread of its own, so the
    worker's loop stays free for the scheduler's messages while the model is loaded and
    parts are scored; tasks hand it parts from the worker's threads."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._stack = AsyncExitStack()
        self._scorer: PartScorer | None = None
        self._failed: Exception | None = None
        self._scoring: set[asyncio.Task[int]] = set()
        self._closing = threading.Lock()
        self._closed = False

    async def open(self, settings: Settings, plan: Plan) -> None:
        entering = self._stack.enter_async_context(part_scorer(settings, plan))
        try:
            self._scorer = await self._on_own_loop(entering)
        except Exception as exc:
            # the run sees it as it registers the plugin; but a worker that joins later is
            # sent tasks whatever its plugins did, and they must fail as its loading did
            self._failed = exc
            raise

    def score(self, part: Part) -> int:
        """From a task's thread: the part scored on the plane's loop (unless the plane is
        closed: its loop would never answer)."""
        if self._failed is not None:
            raise self._failed.with_traceback(None)  # the same error for each of its tasks
        with self._closing:
            if self._closed:
                raise JobCancelledError(f"the batch run ended before {part.name} started")
            scoring = asyncio.run_coroutine_threadsafe(self._score(part), self._loop)
        return scoring.result()

    async def _score(self, part: Part) -> int:
        assert self._scorer is not None
        task = asyncio.current_task()
        assert task is not None
        self._scoring.add(task)
        try:
            return await self._scorer.score(part)
        finally:
            self._scoring.discard(task)

    async def close(self) -> None:
        """Stop parts still scoring (a failed or interrupted run; each removes its unfinished
        file), close the data plane, end the loop."""
        with self._closing:
            self._closed = True
        await self._on_own_loop(self._end())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()

    async def _end(self) -> None:
        for task in self._scoring:
            task.cancel()
        await asyncio.gather(*self._scoring, return_exceptions=True)
        await self._stack.aclose()

    def _on_own_loop(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """``work`` run on the plane's loop, awaited from another loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))
