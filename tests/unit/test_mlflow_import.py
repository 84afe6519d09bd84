"""MLflow import: real MLflow model folders (saved by mlflow itself) become registry versions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.lightgbm
import mlflow.onnx
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import (
    ConfigurationError,
    InvalidInputError,
    ModelLoadError,
    UntrustedArtifactError,
)
from modelport.registry import Registry
from modelport.registry.mlflow_import import import_mlflow
from modelport.runtimes.signature import SignatureKind

NO_REQUIREMENTS: dict[str, Any] = {"pip_requirements": []}  # skips mlflow's slow subprocess


class OffsetModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """An MLflow python model whose state comes from an MLflow artifact."""

    def load_context(self, context: Any) -> None:
        self.offset = float(Path(context.artifacts["offset"]).read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return model_input.sum(axis=1).to_numpy() + self.offset


@pytest.fixture(scope="module")
def iris_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()


@pytest.fixture(scope="module")
def frame_logreg(iris_frame: tuple[pd.DataFrame, np.ndarray]) -> LogisticRegression:
    frame, target = iris_frame
    return LogisticRegression(max_iter=500).fit(frame, target)


@pytest.fixture(scope="module")
def skops_dir(
    tmp_path_factory: pytest.TempPathFactory,
    frame_logreg: LogisticRegression,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> Path:
    path = tmp_path_factory.mktemp("mlflow") / "skops"
    mlflow.sklearn.save_model(
        frame_logreg, path, input_example=iris_frame[0].head(3), **NO_REQUIREMENTS
    )
    return path


@pytest.fixture(scope="module")
def pickle_dir(
    tmp_path_factory: pytest.TempPathFactory,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> Path:
    path = tmp_path_factory.mktemp("mlflow") / "pickle"
    mlflow.sklearn.save_model(
        iris_logreg,
        path,
        serialization_format="cloudpickle",
        input_example=iris_data[0][:3],
        **NO_REQUIREMENTS,
    )
    return path


@pytest.fixture(scope="module")
def pyfunc_dir(
    tmp_path_factory: pytest.TempPathFactory, iris_frame: tuple[pd.DataFrame, np.ndarray]
) -> Path:
    folder = tmp_path_factory.mktemp("mlflow")
    (folder / "offset.txt").write_text("100")
    mlflow.pyfunc.save_model(
        folder / "pyfunc",
        python_model=OffsetModel(),
        artifacts={"offset": str(folder / "offset.txt")},
        input_example=iris_frame[0].head(2),
        **NO_REQUIREMENTS,
    )
    return folder / "pyfunc"


def predictions(settings: Settings, name: str, data: Any) -> dict[str, np.ndarray]:
    return modelport.load_model(name, settings=settings).predict_outputs(data)


def test_sklearn_skops_model_with_a_dataframe_example(
    settings: Settings,
    registry: Registry,
    skops_dir: Path,
    frame_logreg: LogisticRegression,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    record = import_mlflow(registry, skops_dir, "iris")
    frame = iris_frame[0]
    outputs = predictions(settings, "iris", frame)
    assert (record.flavor, record.trusted) == ("sklearn", False)
    assert record.signature.kind is SignatureKind.COLUMNS
    assert record.lineage["source"] == "mlflow"
    assert record.lineage["mlflow_version"] == mlflow.__version__
    assert record.lineage["model_uuid"]
    np.testing.assert_array_equal(outputs["label"], frame_logreg.predict(frame))
    np.testing.assert_allclose(
        outputs["probabilities"], frame_logreg.predict_proba(frame), rtol=1e-6
    )


def test_sklearn_pickle_is_refused_unless_trusted(
    settings: Settings,
    registry: Registry,
    pickle_dir: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(UntrustedArtifactError):
        import_mlflow(registry, pickle_dir, "pickled")
    assert registry.list_models() == []
    record = import_mlflow(registry, pickle_dir, "pickled", trusted=True)
    X, _ = iris_data
    assert record.trusted
    assert record.signature.kind is SignatureKind.TENSOR
    np.testing.assert_allclose(
        predictions(settings, "pickled", X)["probabilities"],
        iris_logreg.predict_proba(X),
        rtol=1e-6,
    )


def test_onnx_model(
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    graph = to_onnx(iris_logreg, X[:1].astype(np.float32), options={"zipmap": False})
    mlflow.onnx.save_model(
        graph, tmp_path / "onnx", input_example=X[:3].astype(np.float32), **NO_REQUIREMENTS
    )
    record = import_mlflow(registry, tmp_path / "onnx", "iris-onnx")
    outputs = predictions(settings, "iris-onnx", X)
    assert record.flavor == "onnx"
    np.testing.assert_array_equal(outputs["label"], iris_logreg.predict(X))
    np.testing.assert_allclose(
        outputs["probabilities"], iris_logreg.predict_proba(X), rtol=1e-5, atol=1e-6
    )


def test_python_model_needs_trust_and_keeps_its_artifacts(
    settings: Settings,
    registry: Registry,
    pyfunc_dir: Path,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    with pytest.raises(UntrustedArtifactError):
        import_mlflow(registry, pyfunc_dir, "offset")
    record = import_mlflow(registry, pyfunc_dir, "offset", trusted=True)
    frame = iris_frame[0]
    assert (record.flavor, record.trusted) == ("pyfunc", True)
    np.testing.assert_allclose(
        predictions(settings, "offset", frame)["prediction"],
        frame.sum(axis=1).to_numpy() + 100,
        rtol=1e-12,
    )


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_tree_model_flavors(
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    flavor: str,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = iris_data
    if flavor == "lightgbm":
        model: Any = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
        mlflow.lightgbm.save_model(
            model.booster_, tmp_path / flavor, input_example=X[:3], **NO_REQUIREMENTS
        )
    else:
        model = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X, y)
        mlflow.xgboost.save_model(model, tmp_path / flavor, input_example=X[:3], **NO_REQUIREMENTS)
    record = import_mlflow(registry, tmp_path / flavor, flavor)
    outputs = predictions(settings, flavor, X)
    assert record.flavor == flavor
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(X), rtol=1e-6)


def test_sample_is_built_from_the_signature_without_an_example(
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    frame_logreg: LogisticRegression,
    iris_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, target = iris_frame
    mlflow.sklearn.save_model(
        frame_logreg,
        tmp_path / "model",
        signature=infer_signature(frame, target),
        **NO_REQUIREMENTS,
    )
    record = import_mlflow(registry, tmp_path / "model", "from-signature")
    assert record.signature.input_names() == list(frame.columns)
    np.testing.assert_array_equal(
        predictions(settings, "from-signature", frame)["label"], frame_logreg.predict(frame)
    )


def test_explicit_sample_when_mlflow_has_neither(
    registry: Registry,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    mlflow.onnx.save_model(
        to_onnx(iris_logreg, X[:1].astype(np.float32)), tmp_path / "bare", **NO_REQUIREMENTS
    )
    with pytest.raises(InvalidInputError, match="pass a sample"):
        import_mlflow(registry, tmp_path / "bare", "bare")
    assert import_mlflow(registry, tmp_path / "bare", "bare", sample=X[:2]).version == 1


def test_file_uri(registry: Registry, skops_dir: Path) -> None:
    record = import_mlflow(registry, skops_dir.as_uri(), "iris")
    assert record.lineage["uri"] == skops_dir.as_uri()


def test_runs_uri_is_downloaded_through_mlflow(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            iris_logreg, name="model", input_example=iris_data[0][:2], **NO_REQUIREMENTS
        )
    record = import_mlflow(registry, f"runs:/{run.info.run_id}/model", "from-run")
    assert record.lineage["run_id"] == run.info.run_id


def test_mlflow_uri_without_mlflow_installed(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("mlflow", "mlflow.artifacts", "mlflow.exceptions"):
        monkeypatch.setitem(sys.modules, module, None)  # as if mlflow were not installed
    with pytest.raises(ConfigurationError, match="needs mlflow"):
        import_mlflow(registry, "models:/fraud/3", "fraud")


def test_a_folder_without_mlmodel_is_refused(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not an MLflow model folder"):
        import_mlflow(registry, tmp_path, "nothing")
