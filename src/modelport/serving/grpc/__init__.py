"""The gRPC transport: Open Inference Protocol V2's ``GRPCInferenceService`` (docs/grpc.md).

``inference.proto`` is ours; ``inference_pb2*`` are generated from it and committed (a test
keeps them in step). Imported only when ``grpc_port`` is set, so an HTTP-only server never
loads grpc.
"""

from modelport.serving.grpc.server import GrpcServer

__all__ = ["GrpcServer"]
