"""The in-process SDK: log a fitted model, load a registered one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.config import Settings
from modelport.registry import ModelAddress, Registry, VersionRecord, prepare_object
from modelport.runtimes.base import Runtime, call_model, load_runtime
from modelport.runtimes.batch import Outputs
from modelport.runtimes.signature import sample_arrays


def log_model(
    model: object,
    name: str,
    sample_input: Any,
    *,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str = "",
    lineage: Mapping[str, Any] | None = None,
    flavor: str | None = None,
    allow_missing: bool | None = None,
    reference_data: Any = None,
    reference_sample_rows: int | None = None,
    settings: Settings | None = None,
) -> VersionRecord:
    """Register ``model`` as the next version of ``name``; returns the new version.

    ``reference_data`` (training data, or any representative rows) becomes the version's
    reference profile, which live traffic is compared with for drift; its sample keeps at most
    ``reference_sample_rows`` rows (default: the setting ``reference_sample_rows``).
    """
    settings = settings or Settings()
    registry = Registry.from_settings(settings)
    try:
        with prepare_object(
            model,
            sample_input,
            name=name,
            flavor=flavor,
            allow_missing=allow_missing,
            scratch=registry.scratch_dir,
        ) as st:
            # captured before anything is stored: reference data the model cannot take
            # fails the registration, not a version half set up
            profile = None
            if reference_data is not None:
                from modelport.monitoring import references  # scipy: only when asked for

                profile = references.capture(
                    st.signature,
                    load_runtime(st.flavor, st.load_request()),
                    reference_data,
                    max_sample_rows=reference_sample_rows or settings.reference_sample_rows,
                )
            record = registry.register(
                name,
                st,
                description=description,
                tags=tags,
                params=params,
                metrics=metrics,
                lineage=lineage,
            )
            if profile is not None:
                from modelport.monitoring import references

                references.store(registry, record, profile)
            return record
    finally:
        registry.close()


class LoadedModel:
    """A registered version loaded in this process, called like the server calls it."""

    def __init__(self, record: VersionRecord, runtime: Runtime) -> None:
        self.record = record
        self._runtime = runtime

    def predict_outputs(self, data: Any) -> Outputs:
        """Every output (e.g. ``label`` and ``probabilities``) for rows in ``data``."""
        batch = self.record.signature.conform(sample_arrays(data)[1])
        return call_model(self._runtime, batch)

    def predict(self, data: Any) -> np.ndarray:
        """The first output: the label for classifiers, the prediction for regressors."""
        return next(iter(self.predict_outputs(data).values()))

    def __repr__(self) -> str:
        return f"<LoadedModel {self.record.address} ({self.record.framework})>"


def load_model(uri: str, *, settings: Settings | None = None) -> LoadedModel:
    """Load ``models:/name@alias``, ``name/3`` or ``name`` (latest), hash-verified."""
    registry = Registry.from_settings(settings or Settings())
    try:
        record = registry.resolve(ModelAddress.parse(uri))
        return LoadedModel(record, registry.load(record))
    finally:
        registry.close()
