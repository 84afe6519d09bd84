"""pyfunc runtime: user classes saved as source plus artifacts, reloaded without pickle."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError, ConfigurationError, UntrustedArtifactError
from modelport.registry import Registry
from modelport.runtimes.base import LoadRequest, flavor_for, flavor_named
from modelport.runtimes.pyfunc import PythonModel

USER_MODULE = """
import numpy as np
from modelport.runtimes.pyfunc import PythonModel

class Constant(PythonModel):
    def predict(self, inputs):
        return np.full(len(inputs["input"]), {value})
"""

MAIN_SCRIPT = """
import sys
import numpy as np
import modelport
from modelport.config import Settings
from modelport.runtimes.pyfunc import PythonModel

class Doubler(PythonModel):
    def predict(self, inputs):
        return inputs["input"].sum(axis=1) * 2

if __name__ == "__main__":
    modelport.log_model(Doubler(), "doubler", np.ones((2, 3)), settings=Settings(home=sys.argv[1]))
"""


class LinearScorer(PythonModel):
    """Its weights travel as an artifact file and come back in ``load``."""

    def __init__(self, weights_file: Path | None = None) -> None:
        self.artifacts = {"weights.json": weights_file} if weights_file else {}
        self.weights = np.array(json.loads(weights_file.read_text())) if weights_file else None

    def load(self, artifacts: Path) -> None:
        self.weights = np.array(json.loads((artifacts / "weights.json").read_text()))

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        score = inputs["input"] @ self.weights
        return {"score": score, "positive": score > 0}


class IncomePerYear(PythonModel):
    """A stateless model over named, mixed-type columns; returns a bare array."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return inputs["income"] / inputs["age"]


@pytest.fixture
def scorer(tmp_path: Path) -> LinearScorer:
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps(np.linspace(-1, 1, 20).tolist()))
    return LinearScorer(weights)


def test_artifacts_come_back_and_outputs_keep_their_names(
    settings: Settings, scorer: LinearScorer, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = tabular_data
    record = modelport.log_model(scorer, "scorer", X[:5], settings=settings)
    outputs = modelport.load_model("scorer", settings=settings).predict_outputs(X)
    expected = scorer.predict({"input": X})
    assert (record.flavor, record.framework, record.trusted) == ("pyfunc", "pyfunc", True)
    assert set(record.files) >= {"code/test_runtime_pyfunc.py", "artifacts/weights.json"}
    assert record.flavor_options["class"] == f"{__name__}:LinearScorer"
    np.testing.assert_array_equal(outputs["score"], expected["score"])
    np.testing.assert_array_equal(outputs["positive"], expected["positive"])


def test_columns_in_and_a_bare_array_out(
    settings: Settings, mixed_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, _ = mixed_frame
    modelport.log_model(IncomePerYear(), "per-year", frame.head(), settings=settings)
    outputs = modelport.load_model("per-year", settings=settings).predict_outputs(frame)
    assert list(outputs) == ["prediction"]
    np.testing.assert_allclose(outputs["prediction"], frame["income"] / frame["age"], rtol=1e-12)


def test_two_versions_of_the_same_module_do_not_collide(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in (1, 2):
        path = tmp_path / f"v{value}" / "usermodel.py"
        path.parent.mkdir()
        path.write_text(USER_MODULE.format(value=value))
        spec = importlib.util.spec_from_file_location("usermodel", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "usermodel", module)
        spec.loader.exec_module(module)
        modelport.log_model(module.Constant(), "constant", np.zeros((2, 3)), settings=settings)
    first = modelport.load_model("constant/1", settings=settings)
    second = modelport.load_model("constant/2", settings=settings)
    assert first.predict(np.zeros((3, 3))).tolist() == [1, 1, 1]
    assert second.predict(np.zeros((3, 3))).tolist() == [2, 2, 2]


def test_a_class_defined_in_a_script_main(settings: Settings, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(MAIN_SCRIPT)
    subprocess.run([sys.executable, str(script), str(settings.home)], check=True, timeout=60)
    loaded = modelport.load_model("doubler", settings=settings)
    assert loaded.record.flavor_options["class"] == "__main__:Doubler"
    assert loaded.predict(np.array([[1.0, 2.0, 3.0]])).tolist() == [12.0]


def test_untrusted_version_is_not_loaded(
    settings: Settings, registry: Registry, scorer: LinearScorer
) -> None:
    record = modelport.log_model(scorer, "scorer", np.zeros((2, 20)), settings=settings)
    request = LoadRequest(
        registry.artifact_dir(record), record.signature, record.flavor_options, trusted=False
    )
    with pytest.raises(UntrustedArtifactError):
        flavor_named("pyfunc").load(request)


def test_tampered_code_is_refused(
    settings: Settings, registry: Registry, scorer: LinearScorer
) -> None:
    record = modelport.log_model(scorer, "tamper", np.zeros((2, 20)), settings=settings)
    code = registry.artifact_dir(record) / "code" / "test_runtime_pyfunc.py"
    code.write_text(code.read_text() + "\nimport os\n")
    with pytest.raises(ArtifactIntegrityError):
        modelport.load_model("tamper", settings=settings)


def test_a_class_defined_in_a_function_is_refused(settings: Settings) -> None:
    class Local(PythonModel):
        def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
            return np.zeros(1)

    with pytest.raises(ConfigurationError, match="module level"):
        modelport.log_model(Local(), "local", np.zeros((1, 1)), settings=settings)


def test_artifact_names_must_be_plain_file_names(
    settings: Settings, scorer: LinearScorer, tmp_path: Path
) -> None:
    scorer.artifacts = {"../escape.json": tmp_path / "weights.json"}
    with pytest.raises(ConfigurationError, match="plain file name"):
        modelport.log_model(scorer, "escape", np.zeros((1, 20)), settings=settings)


def test_python_models_fall_back_to_pyfunc(scorer: LinearScorer) -> None:
    assert flavor_for(scorer).name == "pyfunc"
