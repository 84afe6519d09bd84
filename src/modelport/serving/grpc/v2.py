"""Open Inference Protocol V2 over gRPC: the six calls of ``inference.GRPCInferenceService``.

Like the HTTP V2 routes, each method names its target and hands a codec call
(:mod:`modelport.codecs.v2_grpc`) to the inference service, then encodes the answer; the
:class:`~modelport.serving.grpc.front.GrpcFront` gives every call its context, request id, error
status and metrics.
"""

from __future__ import annotations

from google.protobuf import json_format

import modelport
from modelport.codecs import v2 as v2_codec
from modelport.codecs import v2_grpc as codec
from modelport.codecs.v2 import InferExtras
from modelport.errors import MalformedRequestError, ModelNotReadyError, NotFoundError
from modelport.inference import Answer, InferenceContext, InferenceService, Target
from modelport.inference.router import version_number
from modelport.security.keys import Scope
from modelport.serving.grpc import inference_pb2 as pb
from modelport.serving.grpc import inference_pb2_grpc as pb_grpc
from modelport.serving.grpc.front import Context, GrpcFront


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, service: InferenceService, front: GrpcFront) -> None:
        self._service = service
        self._front = front

    async def ServerLive(  # noqa: N802
        self,
        request: pb.ServerLiveRequest,
        context: Context[pb.ServerLiveRequest, pb.ServerLiveResponse],
    ) -> pb.ServerLiveResponse:
        async with self._front.call(context, "ServerLive"):
            return pb.ServerLiveResponse(live=True)

    async def ServerReady(  # noqa: N802
        self,
        request: pb.ServerReadyRequest,
        context: Context[pb.ServerReadyRequest, pb.ServerReadyResponse],
    ) -> pb.ServerReadyResponse:
        """Ready once every served model is loaded (no error while not: clients read the flag)."""
        async with self._front.call(context, "ServerReady"):
            return pb.ServerReadyResponse(ready=self._service.router.ready())

    async def ModelReady(  # noqa: N802
        self,
        request: pb.ModelReadyRequest,
        context: Context[pb.ModelReadyRequest, pb.ModelReadyResponse],
    ) -> pb.ModelReadyResponse:
        """Not ready (rather than an error) for an unknown or still loading model or version."""
        async with self._front.call(context, "ModelReady") as ctx:
            self._front.authorise(ctx, Scope.READ, request.name or None)
            try:
                self._target(request.name, request.version, ctx)
            except (NotFoundError, ModelNotReadyError):
                return pb.ModelReadyResponse(ready=False)
            return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(  # noqa: N802
        self,
        request: pb.ServerMetadataRequest,
        context: Context[pb.ServerMetadataRequest, pb.ServerMetadataResponse],
    ) -> pb.ServerMetadataResponse:
        async with self._front.call(context, "ServerMetadata") as ctx:
            self._front.authorise(ctx, Scope.READ)
            return pb.ServerMetadataResponse(name="modelport", version=modelport.__version__)

    async def ModelMetadata(  # noqa: N802
        self,
        request: pb.ModelMetadataRequest,
        context: Context[pb.ModelMetadataRequest, pb.ModelMetadataResponse],
    ) -> pb.ModelMetadataResponse:
        async with self._front.call(context, "ModelMetadata") as ctx:
            self._front.authorise(ctx, Scope.READ, request.name or None)
            record = self._target(request.name, request.version, ctx).record
            return json_format.ParseDict(v2_codec.metadata(record), pb.ModelMetadataResponse())

    async def ModelInfer(  # noqa: N802
        self,
        request: pb.ModelInferRequest,
        context: Context[pb.ModelInferRequest, pb.ModelInferResponse],
    ) -> pb.ModelInferResponse:
        async with self._front.call(context, "ModelInfer", request.id) as ctx:
            name = _named(request.model_name)
            answer = await self._service.infer(
                ctx,
                name,
                version_number(name, request.model_version or None),
                lambda signature: codec.decode_infer(request, signature),
                codec.payload_size(request),
            )
            return _response(answer)

    def _target(self, name: str, version: str, ctx: InferenceContext) -> Target:
        name = _named(name)
        return self._service.resolve(name, version_number(name, version or None), ctx)


def _named(name: str) -> str:
    """V2 names the model in every call; an empty name must not reach the default model."""
    if not name:
        raise MalformedRequestError("name the model: the model name is empty")
    return name


def _response(answer: Answer[InferExtras]) -> pb.ModelInferResponse:
    record = answer.target.record
    response = pb.ModelInferResponse(
        model_name=record.name, model_version=str(record.version), id=answer.extras.request_id or ""
    )
    for output in codec.encode_outputs(answer.outputs, answer.extras):
        tensor = response.outputs.add(
            name=output.name, datatype=output.datatype, shape=output.shape
        )
        if output.raw is None:
            getattr(tensor.contents, output.field).extend(output.values)
        else:
            response.raw_output_contents.append(output.raw)
    return response
