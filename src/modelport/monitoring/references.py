"""Reference profiles of registered versions: captured from the training (or any
representative) data through the version's own signature and model, stored beside the
version, and read back for drift.

The data is checked by the version's signature exactly as a request is, then split into
features as the prediction log's entries are (:mod:`modelport.monitoring.features`): the two
sides of a comparison are the same columns by construction. The predictions are the model's
own on the reference rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.monitoring.features import PREDICTION_OUTPUTS, feature_columns
from modelport.monitoring.profile import DEFAULT_SAMPLE_ROWS, ReferenceProfile, ReferenceSample
from modelport.monitoring.profile import capture as capture_profile
from modelport.registry import Registry
from modelport.registry.audit import Actor
from modelport.registry.records import VersionRecord
from modelport.registry.references import ReferenceStore
from modelport.runtimes.base import Runtime, call_model
from modelport.runtimes.batch import Batch
from modelport.runtimes.signature import Signature, sample_arrays

PREDICT_CHUNK_ROWS = 10_000


def capture(
    signature: Signature,
    runtime: Runtime,
    data: Any,
    *,
    max_sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> ReferenceProfile:
    """The profile of ``data`` (a DataFrame, 2-D array or mapping of columns) as a version
    sees it: checked by its signature, with its model's predictions."""
    batch = signature.conform(sample_arrays(data)[1])
    return capture_profile(
        feature_columns(batch.columns),
        _predictions(runtime, batch),
        max_sample_rows=max_sample_rows,
    )


def store(
    registry: Registry,
    record: VersionRecord,
    profile: ReferenceProfile,
    *,
    actor: Actor | None = None,
) -> None:
    """Keep ``profile`` as the reference of ``record`` (replacing any)."""
    ReferenceStore(registry).attach(
        record.name, record.version, profile.to_dict(), profile.sample.to_bytes(), actor=actor
    )


def attach(
    registry: Registry,
    record: VersionRecord,
    data: Any,
    *,
    max_sample_rows: int = DEFAULT_SAMPLE_ROWS,
    actor: Actor | None = None,
) -> ReferenceProfile:
    """Capture the reference of a registered version from ``data`` and store it."""
    runtime = registry.load(record)
    profile = capture(record.signature, runtime, data, max_sample_rows=max_sample_rows)
    store(registry, record, profile, actor=actor)
    return profile


def load(registry: Registry, name: str, version: int) -> ReferenceProfile | None:
    stored = ReferenceStore(registry).get(name, version)
    if stored is None:
        return None
    return ReferenceProfile.from_dict(stored.summary, ReferenceSample.from_bytes(stored.sample))


def _predictions(runtime: Runtime, batch: Batch) -> np.ndarray | None:
    """The model's prediction output on every row, in chunks (a large reference must not
    become one huge call); None when it has no label or prediction output."""
    parts: list[np.ndarray] = []
    for start in range(0, batch.n_rows, PREDICT_CHUNK_ROWS):
        stop = min(start + PREDICT_CHUNK_ROWS, batch.n_rows)
        chunk = Batch({name: a[start:stop] for name, a in batch.columns.items()}, stop - start)
        outputs = call_model(runtime, chunk)
        named = next((outputs[k] for k in PREDICTION_OUTPUTS if k in outputs), None)
        if named is None or named.ndim != 1:
            return None
        parts.append(named)
    return np.concatenate(parts) if parts else None
