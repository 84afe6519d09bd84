"""Runtimes: the Batch, signatures, and one flavor per framework (entry points)."""

from modelport.runtimes.base import Flavor, LoadRequest, Runtime, SavedModel, flavors
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec, infer_signature

__all__ = [
    "Batch",
    "Flavor",
    "LoadRequest",
    "Outputs",
    "Runtime",
    "SavedModel",
    "Signature",
    "SignatureKind",
    "TensorSpec",
    "flavors",
    "infer_signature",
]
