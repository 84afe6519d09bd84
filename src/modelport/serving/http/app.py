"""``create_app``: the composition root of one server process.

It builds the data plane (:class:`~modelport.plane.DataPlane`) and around it access control,
deployments, drift and quality watches, the jobs' dispatch (its own runner, or a broker's
workers) and the schedules; then the FastAPI app for
everything that is not inference, and the :class:`Front` that answers the inference routes
itself. With ``grpc_port`` set, the lifespan also runs the gRPC transport over the same
service. Models load and warm during start-up, before the process accepts a connection;
then the follower keeps them in step with the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

import modelport
from modelport.config import Settings
from modelport.errors import ConfigurationError
from modelport.experiments.plane import Experiments
from modelport.inference import InferenceService, RegistryFollower, Router
from modelport.inference.metrics import ServingMetrics
from modelport.inference.observers import Observer
from modelport.jobs import Dispatch, JobRunner, JobStore, RunnerOptions
from modelport.jobs.schedules import Scheduler, ScheduleStore
from modelport.logs import configure_logging
from modelport.monitoring.drift import drift_watch_of
from modelport.monitoring.quality import quality_watch_of
from modelport.plane import DataPlane
from modelport.registry import Registry
from modelport.rollout.metrics import RolloutMetrics
from modelport.rollout.plane import Rollouts
from modelport.security.admission import Admission, RateLimits
from modelport.security.auth import Authenticator
from modelport.security.keys import KeyHasher, KeyStore
from modelport.security.policy import AccessPolicy, auth_required, exposure_warning
from modelport.security.secret import server_secret
from modelport.serving.http import (
    api,
    audit,
    batch_jobs,
    cards,
    deployments,
    drift,
    experiments,
    feedback,
    health,
    jobs,
    keys,
    mlflow,
    predictions,
    v1,
    v2,
)
from modelport.serving.http.front import Front, FrontLimits
from modelport.serving.http.origins import request_origins
from modelport.serving.http.problems import install_error_handlers
from modelport.serving.http.routes import document
from modelport.serving.http.state import ServingState
from modelport.serving.parent import exit_with_parent
from modelport.store.leases import replica_id

log = logging.getLogger("modelport.serving")
SWITCH_INTERVAL_S = 0.0005
FIRST_GENERATION_GC = 10_000
"""Tracked objects a serving process may gain before a first-generation collection runs.

A collection walks every tracked object still alive. At Python's default of 700 the requests
in flight alone (64 connections) passed it, so collections ran about 400 times a second, took
4 % of a worker's time (timed with ``gc.callbacks``) and freed almost nothing; at 10,000 none
ran in 5 s of the same load. The throughput gain is within this machine's noise."""
HOT_ROUTES = (v1.hot, v2.hot, mlflow.hot)


def tune_interpreter() -> None:
    """For a process whose event loop always has work.

    The loop shares the GIL with background threads (prediction-log writes, database reads):
    at Python's default 5 ms switch interval such a thread can hold every request off that
    long (bench/prediction_log.py, small model, c=16: log on/off 0.66 with the default,
    0.78-0.96 with 0.5 ms over several noisy runs). And see :data:`FIRST_GENERATION_GC`.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.set_threshold(FIRST_GENERATION_GC, *gc.get_threshold()[1:])


def app_from_environment() -> Front:
    """The app of one worker process of ``modelport serve --workers N``."""
    exit_with_parent()
    settings = Settings()
    configure_logging(settings)
    return create_app(settings, settings.models)


def create_app(
    settings: Settings,
    models: Sequence[str],
    *,
    registry: Registry | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> Front:
    """Build one server process's app; ``front.app`` is the FastAPI part (OpenAPI, API)."""
    plane = DataPlane(settings, models, registry=registry, metrics_registry=metrics_registry)
    registry, router, follower, metrics = (
        plane.registry,
        plane.router,
        plane.follower,
        plane.metrics,
    )
    access = access_policy(settings, registry)
    limits = RateLimits.from_settings(settings)
    admission = Admission(access, limits)
    rollouts = rollouts_of(settings, registry, router, follower, metrics, plane.logged)
    holder = replica_id()
    served = functools.partial(served_versions, router)
    watches = [
        watch
        for watch in (
            drift_watch_of(settings, registry, served, metrics.registry, holder),
            quality_watch_of(settings, registry, served, metrics.registry, holder),
        )
        if watch is not None
    ]
    # experiments run on deployments: a process serving none has none to enrol into
    enrolment = None if rollouts is None else Experiments(registry, router, metrics, holder)
    policies = [*rollouts.observers, *enrolment.observers] if rollouts and enrolment else []
    service = plane.service(policies, admission)
    job_store = JobStore(registry.database)
    dispatch = job_dispatch(settings, job_store, service, router, holder)
    scheduler = Scheduler(ScheduleStore(registry.database), dispatch.queued)

    grpc_server = None
    if settings.grpc_port is not None:  # imported only then: grpc is an optional extra
        try:
            from modelport.serving.grpc import GrpcServer
        except ImportError as exc:
            raise ConfigurationError(
                f"gRPC needs the grpc extra (pip install 'modelport[grpc]'): {exc}"
            ) from exc
        grpc_server = GrpcServer(
            settings, settings.grpc_port, service, plane.request_metrics, access
        )

    @asynccontextmanager
    async def lifespan(fastapi_app: FastAPI) -> AsyncIterator[None]:
        # Loaded before the server accepts connections: with several workers on one port, a
        # worker still loading would otherwise take requests and answer 503.
        problems = await plane.load() + (await rollouts.load() if rollouts else [])
        if problems and not settings.wait_for_models:
            await _close(plane, limits)
            fastapi_app.state.startup_error = ConfigurationError(
                "nothing to serve for "
                + "; ".join(problems)
                + " (start with --wait-for-models to keep waiting for them)"
            )
            raise fastapi_app.state.startup_error
        tune_interpreter()
        await service.start()
        log.info("ready (pid %d): %s", os.getpid(), banner(settings, router))
        if (exposure := exposure_warning(settings)) is not None:
            log.warning("%s (--insecure)", exposure)
        watcher = asyncio.create_task(follower.watch(settings.reload_interval_s))
        if rollouts is not None:
            rollouts.start()
        if enrolment is not None:
            enrolment.start()
        for watch in watches:
            await watch.start()
        dispatch.start()
        scheduler.start()
        try:
            if grpc_server is not None:
                await grpc_server.start()
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(settings.drain_timeout_s)
            await scheduler.stop()
            await dispatch.stop()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if enrolment is not None:
                await enrolment.stop()
            if rollouts is not None:
                await rollouts.stop()
            for watch in watches:
                await watch.stop()
            await service.stop()
            await _close(plane, limits)

    # Swagger UI and ReDoc from files in the package, not a CDN: /docs works offline
    app = FastAPIOffline(
        title="modelport",
        version=modelport.__version__,
        lifespan=lifespan,
        description="Model serving over KServe V1, Open Inference Protocol V2 and "
        "the MLflow scoring protocol, plus the registry API.",
    )
    app.state.serving = ServingState(
        settings, registry, service, follower, metrics, access, rollouts, job_store, dispatch
    )
    install_error_handlers(app)
    for module in (
        health,
        v1,
        v2,
        mlflow,
        jobs,
        batch_jobs,
        api,
        cards,
        keys,
        audit,
        deployments,
        experiments,
        predictions,
        drift,
    ):
        app.include_router(module.router)
    app.include_router(experiments.events)
    app.include_router(feedback.writer)
    app.include_router(feedback.reader)
    document(app, HOT_ROUTES)
    return Front(
        app,
        [r for group in HOT_ROUTES for r in group.routes],
        service,
        plane.request_metrics,
        FrontLimits(
            settings.max_body_bytes,
            settings.max_upload_bytes,
            settings.request_timeout_s,
            tuple(settings.cors_origins),
        ),
        access,
        request_origins(settings),
    )


def rollouts_of(
    settings: Settings,
    registry: Registry,
    router: Router,
    follower: RegistryFollower,
    metrics: ServingMetrics,
    shadow_observers: Sequence[Observer],
) -> Rollouts | None:
    """Deployments this process serves: those named, every one (``all_deployments``), or
    none (no rollout machinery at all when only models are served)."""
    if not settings.deployments and not settings.all_deployments:
        return None
    names = None if settings.all_deployments else settings.deployments
    rollout_metrics = RolloutMetrics(metrics.registry)
    return Rollouts(
        registry,
        router,
        follower,
        rollout_metrics,
        metrics.observer_drops,
        names,
        settings.deployment_poll_s,
        shadow_observers,
    )


def job_dispatch(
    settings: Settings, store: JobStore, service: InferenceService, router: Router, holder: str
) -> Dispatch:
    """With a job broker, the server only hands jobs on (``modelport worker`` runs them);
    without one, it runs them itself."""
    if settings.job_broker_url is None:
        served = functools.partial(answering, router)
        options = RunnerOptions.from_settings(settings)
        return JobRunner(settings, store, service, served, options, holder)
    try:  # imported only then: celery is an optional extra
        from modelport.jobs.broker import BrokerDispatch
    except ImportError as exc:
        raise ConfigurationError(
            f"a job broker needs the celery extra (pip install 'modelport[celery]'): {exc}"
        ) from exc
    return BrokerDispatch(settings)


def served_versions(router: Router) -> set[tuple[str, int]]:
    """Every version this process answers with now: drift is watched for each."""
    return {
        (route.current.record.name, route.current.record.version)
        for route in router.all_routes()
        if route.current is not None
    }


def answering(router: Router) -> list[str]:
    """The models and deployments this process can answer for now: the job runner claims
    jobs for these only (a job for a model still loading waits rather than spending its
    attempts)."""
    models = [name for name, route in router.routes.items() if route.current is not None]
    return models + [name for name, endpoint in router.endpoints.items() if endpoint.ready()]


def access_policy(settings: Settings, registry: Registry) -> AccessPolicy:
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))
    public = frozenset(name for name, options in settings.model_options.items() if options.public)
    authenticator = Authenticator(store, settings.auth_refresh_s)
    return AccessPolicy(authenticator, auth_required(settings), public)


def banner(settings: Settings, router: Router) -> str:
    """What this process serves and where: the line an operator looks for at start-up."""
    served = "; ".join(
        [
            f"{r.address} -> v{r.current.record.version}" if r.current else f"{r.address} waiting"
            for r in router.routes.values()
        ]
        + [f"deployment {name}" for name in router.endpoints]
    )
    scheme = "https" if settings.ssl_certfile is not None else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    grpc = f", gRPC V2 on :{settings.grpc_port}" if settings.grpc_port is not None else ""
    return (
        f"{served or 'no models'} | {base}/v1/models/NAME:predict, "
        f"{base}/v2/models/NAME/infer, {base}/invocations, {base}/docs, "
        f"{base}/metrics{grpc}"
    )


async def _close(plane: DataPlane, limits: RateLimits) -> None:
    await plane.close()
    await limits.close()
