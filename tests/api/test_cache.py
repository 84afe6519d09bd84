"""Response cache: hits for repeated inputs, never an old version's answer, Redis or memory."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.registry import Registry
from modelport.serving.cache import decode_outputs, encode_outputs
from tests.conftest import port_open, service_missing

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["memory", "redis"])
def cached_settings(request: pytest.FixtureRequest, make_settings: Any) -> Settings:
    # the alias is moved over HTTP, which a server allows only when told to
    options = {"model_options": {"iris": {"cache": True}}, "reload_interval_s": 0.1,
               "allow_remote_admin": True}
    if request.param == "redis":
        if not port_open("127.0.0.1", 6379):
            service_missing("Redis on 127.0.0.1:6379")
        options["cache_url"] = REDIS_URL
    return make_settings(**options)  # type: ignore[no-any-return]


def _lookups(client: Any, result: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf'modelport_cache_requests_total{{model="iris",result="{result}"}} (\S+)',
                      text)
    return float(match.group(1)) if match else 0.0


def test_repeated_input_is_a_hit_and_an_alias_move_never_serves_old_answers(
        serve: Any, cached_settings: Settings, iris_logreg: LogisticRegression,
        iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris_data
    rng = np.random.default_rng(int(uuid.uuid4().int % 2**32))  # fresh inputs every run
    rows = (X[:3] + rng.normal(0, 1e-3, X[:3].shape)).tolist()
    modelport.log_model(iris_logreg, "iris", X[:10], settings=cached_settings)
    constant = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    modelport.log_model(constant, "iris", X[:10], settings=cached_settings)
    registry = Registry.from_settings(cached_settings)
    registry.set_alias("iris", "production", 1)
    registry.close()
    body = {"instances": rows}
    with serve(["iris@production"], settings=cached_settings) as client:
        first = client.post("/v1/models/iris:predict", json=body).json()
        second = client.post("/v1/models/iris:predict", json=body).json()
        assert first == second == {"predictions": iris_logreg.predict(rows).tolist()}
        assert (_lookups(client, "miss"), _lookups(client, "hit")) == (1.0, 1.0)
        assert client.put("/api/models/iris/aliases/production",
                          json={"version": 2}).status_code == 200
        deadline = time.monotonic() + 10
        while client.get("/api/serving").json()["models"][0]["version"] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        moved = client.post("/v1/models/iris:predict", json=body).json()
        assert moved == {"predictions": [2, 2, 2]}
        assert _lookups(client, "miss") == 2.0
        v2_probabilities = client.post("/v1/models/iris:predict?output=probabilities",
                                       json=body).json()
        assert v2_probabilities == {"predictions": [[0.0, 0.0, 1.0]] * 3}


def test_models_without_the_option_are_not_cached(
        serve: Any, make_settings: Any, iris_logreg: LogisticRegression,
        iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    settings = make_settings(model_options={"other": {"cache": True}})
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"], settings=settings) as client:
        for _ in range(2):
            client.post("/v1/models/iris:predict", json={"instances": X[:1].tolist()})
        assert _lookups(client, "hit") == _lookups(client, "miss") == 0.0


def test_an_unreachable_redis_degrades_to_misses(
        serve: Any, make_settings: Any, iris_logreg: LogisticRegression,
        iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    settings = make_settings(model_options={"iris": {"cache": True}},
                             cache_url="redis://127.0.0.1:1/0")
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"], settings=settings) as client:
        for _ in range(2):
            answer = client.post("/v1/models/iris:predict", json={"instances": X[:2].tolist()})
            assert answer.status_code == 200
        assert _lookups(client, "miss") == 2.0


def test_cached_outputs_round_trip_through_bytes() -> None:
    outputs = {"label": np.array(["setosa", "virginica"], dtype=object),
               "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]]),
               "count": np.array([1, 2], dtype=np.int32)}
    back = decode_outputs(encode_outputs(outputs))
    assert list(back) == list(outputs)
    for name, array in outputs.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype
