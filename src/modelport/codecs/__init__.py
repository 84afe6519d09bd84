"""Wire codecs: request bodies to named arrays and outputs back to bytes, for every protocol.

Pure functions over bytes, numpy and the model signature; no web framework, so the HTTP
routes, the gRPC service, jobs and stream consumers share them. ``Decoded`` is what each
decoder hands the inference service.
"""

from modelport.codecs.decoded import MAX_INPUTS, Decoded

__all__ = ["MAX_INPUTS", "Decoded"]
