"""Real runtimes used as test doubles (pyfunc classes the server loads from their source)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from modelport.runtimes.pyfunc import PythonModel


class SlowModel(PythonModel):
    """Sleeps for as long as the ``seconds`` input asks, then echoes it: a request in flight.

    When ``SLOW_MODEL_MARKER`` names a file, it is created as the sleep starts, so a test
    knows the request has reached the model.
    """

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        seconds = inputs["input"][:, 0]
        marker = os.environ.get("SLOW_MODEL_MARKER")
        if marker and seconds.max() > 0:
            Path(marker).touch()
        time.sleep(float(seconds.max()))
        return {"prediction": seconds}


class ScaledSum(PythonModel):
    """Sums the features and scales them by a factor read from its artifact file."""

    def __init__(self, factor_file: Path | None = None) -> None:
        self.artifacts = {"factor.txt": factor_file} if factor_file else {}
        self.factor = 1.0

    def load(self, artifacts: Path) -> None:
        self.factor = float((artifacts / "factor.txt").read_text())

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return inputs["input"].sum(axis=1) * self.factor


class SlowPoisonModel(PythonModel):
    """Takes 50 ms per call (so requests queue and merge) and fails on any row holding -1."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        rows = inputs["input"]
        time.sleep(0.05)
        if (rows == -1).any():
            raise ValueError("poisoned row")
        return {"prediction": rows.sum(axis=1), "rows": np.full(len(rows), len(rows))}


class ClosingModel(PythonModel):
    """Doubles its input; on close it touches ``CLOSED_MODEL_DIR``/closed so unloads show."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return inputs["input"][:, 0] * 2

    def close(self) -> None:
        folder = os.environ.get("CLOSED_MODEL_DIR")
        if folder:
            (Path(folder) / "closed").touch()


class Scaled(PythonModel):
    """Sums the features times a fixed factor: versions with another factor answer otherwise."""

    factor = 1.0

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return inputs["input"].sum(axis=1) * self.factor


class Doubled(Scaled):
    factor = 2.0


class Flaky(Scaled):
    """Fails on about one input in five (decided by the input, so a retry fails again)."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        rows = inputs["input"]
        if (np.round(rows[:, 0] * 1000) % 5 == 0).any():
            raise ValueError("flaky model failed on this input")
        return super().predict(inputs)


class Delayed(Scaled):
    """Answers like :class:`Scaled`, 50 ms later."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        time.sleep(0.05)
        return super().predict(inputs)


class Crashing(Scaled):
    """Raises on every call after its warm-up (a shadow that must never hurt anyone)."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        if len(inputs["input"]) > 0 and inputs["input"][0, 0] != 0.5:
            raise RuntimeError("shadow crashed")
        return super().predict(inputs)
