"""Response cache: hits for repeated inputs, never an old version's answer, Redis or memory."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.inference.cache import decode_outputs, encode_outputs
from modelport.registry import Registry
from tests.conftest import port_open, service_missing

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["memory", "redis"])
def cached_settings(request: pytest.FixtureRequest, make_settings: Any) -> Settings:
    # the alias is moved over HTTP, which a server allows only when told to
    options = {
        "model_options": {"iris": {"cache": True}},
        "reload_interval_s": 0.1,
        "allow_remote_admin": True,
    }
    if request.param == "redis":
        if not port_open("127.0.0.1", 6379):
            service_missing("Redis on 127.0.0.1:6379")
        options["cache_url"] = REDIS_URL
    return make_settings(**options)  # type: ignore[no-any-return]


def _lookups(client: Any, result: str) -> float:
    text = client.get("/metrics").text
    match = re.search(
        rf'modelport_cache_requests_total{{model="iris",result="{result}"}} (\S+)', text
    )
    return float(match.group(1)) if match else 0.0


def test_repeated_input_is_a_hit_and_an_alias_move_never_serves_old_answers(
    serve: Any,
    cached_settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
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
        assert (
            client.put("/api/models/iris/aliases/production", json={"version": 2}).status_code
            == 200
        )
        deadline = time.monotonic() + 10
        while client.get("/api/serving").json()["models"][0]["version"] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        moved = client.post("/v1/models/iris:predict", json=body).json()
        assert moved == {"predictions": [2, 2, 2]}
        assert _lookups(client, "miss") == 2.0
        v2_probabilities = client.post(
            "/v1/models/iris:predict?output=probabilities", json=body
        ).json()
        assert v2_probabilities == {"predictions": [[0.0, 0.0, 1.0]] * 3}


def test_models_without_the_option_are_not_cached(
    serve: Any,
    make_settings: Any,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    settings = make_settings(model_options={"other": {"cache": True}})
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"], settings=settings) as client:
        for _ in range(2):
            client.post("/v1/models/iris:predict", json={"instances": X[:1].tolist()})
        assert _lookups(client, "hit") == _lookups(client, "miss") == 0.0


class SilentServer:
    """A TCP server that accepts connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_redis() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("hung", [False, True], ids=["refusing", "hanging"])
def test_an_unreachable_redis_degrades_to_misses_and_is_skipped_after_a_failure(
    serve: Any,
    make_settings: Any,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
    hung: bool,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    X, _ = iris_data
    silent = request.getfixturevalue("silent_redis") if hung else None
    url = silent.url if silent else "redis://127.0.0.1:1/0"
    settings = make_settings(model_options={"iris": {"cache": True}}, cache_url=url)
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with (
        caplog.at_level(logging.WARNING, logger="modelport.inference"),
        serve(["iris"], settings=settings) as client,
    ):
        for _ in range(20):
            answer = client.post("/v1/models/iris:predict", json={"instances": X[:2].tolist()})
            assert answer.status_code == 200
        assert _lookups(client, "miss") == 20.0
    warnings = [r for r in caplog.records if "response cache" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    if silent is not None:  # after the first timeout, Redis was left alone
        assert len(silent.accepted) == 1


def test_cached_outputs_round_trip_through_bytes() -> None:
    outputs = {
        "label": np.array(["setosa", "virginica"], dtype=object),
        "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]]),
        "count": np.array([1, 2], dtype=np.int32),
    }
    back = decode_outputs(encode_outputs(outputs))
    assert list(back) == list(outputs)
    for name, array in outputs.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype
