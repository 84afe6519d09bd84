"""The gRPC listener of one server process, started and stopped by the app's lifespan.

It serves the same :class:`~modelport.inference.InferenceService` as HTTP (router, pool,
batching, cache, observers), so a model loads once and both transports share its batches.
"""

from __future__ import annotations

import logging

import grpc

from modelport.config import Settings
from modelport.errors import ConfigurationError
from modelport.inference import InferenceService
from modelport.inference.metrics import RequestMetrics
from modelport.security.policy import AccessPolicy
from modelport.serving.grpc import inference_pb2_grpc as pb_grpc
from modelport.serving.grpc.front import GrpcFront
from modelport.serving.grpc.v2 import InferenceServicer

log = logging.getLogger("modelport.serving")


class GrpcServer:
    def __init__(
        self,
        settings: Settings,
        port: int,
        service: InferenceService,
        metrics: RequestMetrics,
        access: AccessPolicy,
    ) -> None:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        self.address = f"{host}:{port}"
        self._settings = settings
        self._service = service
        self._metrics = metrics
        self._access = access
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Listen and serve; returns the port (the one the system chose for port 0)."""
        settings = self._settings
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                # several worker processes share the port as they share HTTP's; one process alone
                # must fail on a port that is taken, not share it unnoticed
                ("grpc.so_reuseport", int(settings.resolved_workers > 1)),
            ]
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self._service, GrpcFront(self._metrics, self._access)), server
        )
        try:
            port = self._listen(server)
        except RuntimeError as exc:
            raise ConfigurationError(f"cannot listen for gRPC on {self.address}: {exc}") from exc
        await server.start()
        self._server = server
        log.info("gRPC (Open Inference Protocol V2) on port %d", port)
        return port

    def _listen(self, server: grpc.aio.Server) -> int:
        """TLS with the HTTP side's certificate and key when they are set."""
        certfile, keyfile = self._settings.ssl_certfile, self._settings.ssl_keyfile
        if certfile is None or keyfile is None:
            return server.add_insecure_port(self.address)
        credentials = grpc.ssl_server_credentials([(keyfile.read_bytes(), certfile.read_bytes())])
        return server.add_secure_port(self.address, credentials)

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls; those in flight get ``grace_s`` to finish."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
