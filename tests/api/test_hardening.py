"""What a browser or a slow client could do to a server: foreign hosts and origins, CORS,
requests that never finish."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from starlette.testclient import TestClient

import modelport
from modelport.config import Settings
from tests.api.conftest import serving
from tests.e2e.doubles import SlowPoisonModel

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
PREDICT = "/v1/models/iris:predict"


@pytest.fixture
def client(settings: Settings, iris_served: np.ndarray) -> Iterator[TestClient]:
    with serving(settings.model_copy(update={"allow_remote_admin": True}), ["iris"]) as client:
        yield client


@pytest.mark.parametrize("path", [PREDICT, "/api/models", "/v2/models/iris"])
def test_a_loopback_server_refuses_foreign_host_names(client: TestClient, path: str) -> None:
    """DNS rebinding: a web page's own name resolving to 127.0.0.1."""
    method = "POST" if path == PREDICT else "GET"
    answer = client.request(method, path, json=ROW, headers={"Host": "evil.example:8000"})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "evil.example" in answer.json()["detail"]
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        assert client.request(method, path, json=ROW, headers={"Host": host}).is_success


def test_allowed_hosts_widen_the_check(settings: Settings, iris_served: np.ndarray) -> None:
    listed = settings.model_copy(update={"allowed_hosts": ["models.internal"]})
    with serving(listed, ["iris"], wait_ready=False) as client:
        assert client.post(PREDICT, json=ROW, headers={"Host": "models.internal"}).is_success
        assert client.post(PREDICT, json=ROW, headers={"Host": "localhost"}).status_code == 400


def test_pages_of_other_origins_cannot_change_the_registry(client: TestClient) -> None:
    """A cross-site form post to a local server: refused; the server's own origin is not."""
    move = "/api/models/iris/aliases/production"
    foreign = client.put(move, json={"version": 1}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert "evil.example" in foreign.json()["detail"]
    assert client.get("/api/models/iris/aliases").json()["aliases"] == {}
    own = client.put(move, json={"version": 1}, headers={"Origin": "http://localhost"})
    assert own.status_code == 200
    reading = client.get("/api/models", headers={"Origin": "https://evil.example"})
    assert reading.status_code == 200  # no CORS header: the page cannot read the answer


def test_cors_is_off_by_default_and_answers_listed_origins(
    client: TestClient, settings: Settings, iris_served: np.ndarray
) -> None:
    origin = {"Origin": "https://app.example"}
    assert (
        "access-control-allow-origin" not in client.post(PREDICT, json=ROW, headers=origin).headers
    )
    opened = settings.model_copy(update={"cors_origins": ["https://app.example"]})
    with serving(opened, ["iris"], wait_ready=False) as cors:
        preflight = cors.options(
            PREDICT,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        answer = cors.post(PREDICT, json=ROW, headers=origin)
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in answer.headers["access-control-expose-headers"]
        other = cors.post(PREDICT, json=ROW, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_an_inference_request_that_outlives_its_timeout_gets_504(
    settings: Settings,
) -> None:
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    hurried = settings.model_copy(update={"request_timeout_s": 0.01})
    with serving(hurried, ["slow"]) as client:
        answer = client.post("/v1/models/slow:predict", json={"instances": [[1.0, 2.0, 3.0]]})
    assert answer.status_code == 504
    assert answer.json()["code"] == "request_timeout"
    assert "MODELPORT_REQUEST_TIMEOUT_S" in answer.json()["detail"]
