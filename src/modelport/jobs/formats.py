"""Which inference protocol a job's body speaks, and how its answer is written.

A job takes any body the model's predict routes take: a KServe V1 body, an Open Inference
Protocol V2 body (JSON, or JSON with binary tensors), or an MLflow ``/invocations`` body (JSON,
CSV or Parquet). The answer is the body the synchronous route would have sent, except that V2
outputs are always JSON: a job's answer is read back later, often inline in its status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from modelport.codecs import mlflow, v1, v2
from modelport.codecs.decoded import Decoded
from modelport.inference.service import Decoder
from modelport.registry.records import VersionRecord
from modelport.runtimes.batch import Outputs
from modelport.runtimes.signature import Signature

_MLFLOW_ONLY = frozenset({"dataframe_split", "dataframe_records"})


class JobFormat(StrEnum):
    V1 = "v1"
    V2 = "v2"
    MLFLOW = "mlflow"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A predict job's body and what is needed to read it again when the job runs."""

    format: JobFormat
    body: bytes
    content_type: str | None = None
    output: str | None = None
    """The output to answer with (``?output=`` of V1 and MLflow); None: the model's first."""
    header_length: str | None = None
    """V2's ``Inference-Header-Content-Length``: binary tensors follow a JSON header."""

    @classmethod
    def submitted(
        cls,
        body: bytes,
        content_type: str | None,
        *,
        format: JobFormat | None = None,
        output: str | None = None,
        header_length: str | None = None,
    ) -> JobRequest:
        """A body as submitted; without ``format``, the protocol is told from the body."""
        chosen = format or detect(body, content_type, header_length)
        return cls(chosen, body, content_type, output, header_length)

    def options(self) -> dict[str, Any]:
        """What the job row keeps beside the body (see :meth:`stored`)."""
        kept = {
            "content_type": self.content_type,
            "output": self.output,
            "header_length": self.header_length,
        }
        return {key: value for key, value in kept.items() if value is not None}

    @classmethod
    def stored(cls, format: str, options: dict[str, Any], body: bytes) -> JobRequest:
        return cls(
            JobFormat(format),
            body,
            options.get("content_type"),
            options.get("output"),
            options.get("header_length"),
        )

    def decoder(self) -> Decoder[Any]:
        if self.format is JobFormat.V1:
            return lambda signature: v1.decode_predict(self.body, signature, self.output)
        if self.format is JobFormat.V2:
            return self._decode_v2
        return lambda signature: mlflow.decode_invocation(
            self.body, self.content_type, signature, self.output
        )

    def _decode_v2(self, signature: Signature) -> Decoded[Any]:
        decoded = v2.decode_infer(self.body, self.header_length, signature)
        outputs = tuple((name, False) for name, _binary in decoded.extras.outputs)
        return Decoded(
            decoded.arrays,
            decoded.pointers,
            v2.InferExtras(outputs, decoded.extras.request_id),
            decoded.locate,
        )

    def encode(self, record: VersionRecord, outputs: Outputs, extras: Any) -> bytes:
        """The answer's body (always JSON)."""
        if self.format is JobFormat.V2:
            body, _binary = v2.encode_infer(record, outputs, extras)
            return body
        chosen = extras if self.format is JobFormat.V1 else extras.output
        return v1.encode_predictions(outputs, chosen)


def detect(body: bytes, content_type: str | None, header_length: str | None) -> JobFormat:
    """The protocol of a body nobody named: CSV and Parquet are MLflow's, binary tensors
    V2's; a JSON object by its keys (``dataframe_*``: MLflow, ``inputs`` as a list of named
    tensors: V2, anything else: V1, whose errors then say what is missing)."""
    if header_length is not None:
        return JobFormat.V2
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if mlflow.MEDIA_TYPES.get(media_type, mlflow.BodyFormat.JSON) is not mlflow.BodyFormat.JSON:
        return JobFormat.MLFLOW
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JobFormat.V1  # the V1 codec names the JSON error
    if not isinstance(payload, dict):
        return JobFormat.V1
    if _MLFLOW_ONLY & payload.keys():
        return JobFormat.MLFLOW
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return JobFormat.V1
    if all(isinstance(i, dict) and ("datatype" in i or "shape" in i) for i in inputs):
        return JobFormat.V2
    return JobFormat.V1
