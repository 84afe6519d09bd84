"""Every runtime served over real HTTP answers exactly what the same version answers in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import lightgbm
import numpy as np
import pytest
import xgboost
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

import modelport
from modelport.config import Settings
from tests.e2e.doubles import ScaledSum

MODELS = ["rf", "rf_onnx", "lgbm", "xgb", "pyfunc"]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, tabular_data: tuple[np.ndarray, np.ndarray]
) -> Any:
    """One server hosting a model of every runtime, all on the same 20-feature data."""
    from tests.e2e.conftest import start_server

    X, y = tabular_data
    X = X.astype(np.float32)
    home = tmp_path_factory.mktemp("runtimes")
    settings = Settings(home=home / "home")
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    factor = home / "factor.txt"
    factor.write_text("0.5")
    models = {
        "rf": forest,
        "rf_onnx": to_onnx(forest, X[:1], options={id(forest): {"zipmap": False}}),
        "lgbm": lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y),
        "xgb": xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y),
        "pyfunc": ScaledSum(factor),
    }
    for name, model in models.items():
        modelport.log_model(model, name, X[:20], settings=settings)
    server = start_server(MODELS, settings, home, "--default-model", "rf")
    yield server, settings, X[:50]
    server.terminate()


@pytest.mark.parametrize("name", MODELS)
def test_served_equals_in_process(served: Any, name: str) -> None:
    server, settings, rows = served
    local = modelport.load_model(name, settings=settings).predict_outputs(rows)
    first = next(iter(local))
    v1 = httpx.post(f"{server.url}/v1/models/{name}:predict", json={"instances": rows.tolist()})
    assert v1.status_code == 200, v1.text
    expected = local[first]
    np.testing.assert_array_equal(np.asarray(v1.json()["predictions"], expected.dtype), expected)
    mlflow = httpx.post(
        f"{server.url}/models/{name}/invocations", json={"dataframe_split": {"data": rows.tolist()}}
    )
    assert mlflow.status_code == 200, mlflow.text
    np.testing.assert_array_equal(
        np.asarray(mlflow.json()["predictions"], expected.dtype), expected
    )
    v2 = httpx.post(
        f"{server.url}/v2/models/{name}/infer",
        json={
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.ravel().tolist(),
                }
            ]
        },
    )
    assert v2.status_code == 200, v2.text
    for output in v2.json()["outputs"]:
        wanted = local[output["name"]]
        assert output["shape"][0] == len(rows)
        got = np.asarray(output["data"], wanted.dtype).reshape(wanted.shape)
        np.testing.assert_array_equal(got, wanted)


def test_default_model_answers_invocations(served: Any) -> None:
    server, settings, rows = served
    answer = httpx.post(
        f"{server.url}/invocations",
        json={"inputs": rows[:3].tolist()},
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    expected = modelport.load_model("rf", settings=settings).predict(rows[:3])
    assert answer.json()["predictions"] == expected.tolist()
    assert httpx.get(f"{server.url}/ping").status_code == 200
    assert httpx.get(f"{server.url}/version").text == modelport.__version__
    assert Path(settings.home).exists()
