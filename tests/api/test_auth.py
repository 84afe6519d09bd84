"""API keys on the real app: every route's scope, bad keys, model lists, public models."""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.config import AuthMode, ModelOptions, Settings
from modelport.registry import Registry
from modelport.security.keys import TOKEN_PREFIX, KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from modelport.serving.http.access import OPEN_PATHS
from tests.api.conftest import serving

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
PATH_VALUES = {"name": "iris", "version": "1", "alias": "production", "key_id": "0123456789ab"}


def _store(settings: Settings, registry: Registry) -> KeyStore:
    return KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))


@pytest.fixture
def secured(settings: Settings) -> Settings:
    # a short refresh lets a revocation made behind the server's back show within the test
    return settings.model_copy(
        update={"auth": AuthMode.REQUIRED, "allow_remote_admin": False, "auth_refresh_s": 0.05}
    )


@pytest.fixture
def tokens(secured: Settings, registry: Registry, iris_served: np.ndarray) -> dict[Scope, str]:
    """One token per scope, made the way `modelport keys create` makes them."""
    store = _store(secured, registry)
    return {scope: store.create(scope).token for scope in Scope}


@pytest.fixture
def client(secured: Settings, tokens: dict[Scope, str]) -> Iterator[TestClient]:
    with serving(secured, ["iris"], wait_ready=False) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path
    for name, value in PATH_VALUES.items():
        url = url.replace("{" + name + "}", value)
    body = ROW if method in ("post", "put") else None
    return client.request(method.upper(), url, json=body, headers=headers)


def test_every_route_states_a_scope_or_is_a_probe(client: TestClient) -> None:
    for path, method, operation in _operations(client):
        if path in OPEN_PATHS:
            assert "security" not in operation, path
            continue
        scopes = {next(iter(entry.values()))[0] for entry in operation.get("security", [])}
        assert len(scopes) == 1, (method, path)
        assert scopes <= {s.value for s in Scope}, (method, path)


def test_each_scope_against_each_route(client: TestClient, tokens: dict[Scope, str]) -> None:
    """No key: 401; a key one scope too low: 403; the stated scope: past authorisation."""
    order = list(Scope)
    checked = 0
    for path, method, operation in _operations(client):
        if path in OPEN_PATHS:
            assert _call(client, method, path, {}).status_code not in (401, 403), path
            continue
        needed = Scope(operation["security"][0]["bearer"][0])
        anonymous = _call(client, method, path, {})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        if needed is not Scope.READ:
            lower = order[order.index(needed) - 1]
            refused = _call(client, method, path, _bearer(tokens[lower]))
            assert refused.status_code == 403, (method, path, lower, refused.text)
            assert refused.json()["code"] == "forbidden"
        allowed = _call(client, method, path, {"X-API-Key": tokens[needed]})
        assert allowed.status_code not in (401, 403), (method, path, allowed.text)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    "token",
    ["mpk_nothex00000_" + "a" * 43, "not-a-key", "mpk_0123456789ab_" + "b" * 43],
)
def test_malformed_and_unknown_keys_are_refused(client: TestClient, token: str) -> None:
    answer = client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(token))
    assert answer.status_code == 401
    assert answer.json()["error"]  # the V1 protocol's own key, beside problem+json
    assert token not in answer.text


def test_revoked_and_expired_keys_are_refused(
    client: TestClient, secured: Settings, registry: Registry
) -> None:
    store = _store(secured, registry)
    revoked = store.create(Scope.PREDICT)
    expired = store.create(Scope.PREDICT, expires_in=timedelta(seconds=-1))
    assert client.post(
        "/v1/models/iris:predict", json=ROW, headers=_bearer(revoked.token)
    ).is_success
    store.revoke(revoked.key.id)  # straight in the database, as `modelport keys revoke` does
    time.sleep(0.1)
    for issued, word in ((revoked, "revoked"), (expired, "expired")):
        answer = client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(issued.token))
        assert answer.status_code == 401
        assert word in answer.json()["detail"]


def test_a_key_restricted_to_other_models_is_forbidden(
    client: TestClient, secured: Settings, registry: Registry
) -> None:
    store = _store(secured, registry)
    other = store.create(Scope.DEPLOY, models=["fraud"]).token
    mine = store.create(Scope.PREDICT, models=["iris"]).token
    refused = client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(other))
    assert refused.status_code == 403
    assert "fraud" in refused.json()["detail"]
    assert client.get("/v2/models/iris", headers=_bearer(other)).status_code == 403
    assert client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(mine)).is_success


def test_a_public_model_answers_without_a_key_but_the_api_does_not(
    secured: Settings, iris_served: np.ndarray
) -> None:
    settings = secured.model_copy(update={"model_options": {"iris": ModelOptions(public=True)}})
    with serving(settings, ["iris"]) as client:
        assert client.post("/v1/models/iris:predict", json=ROW).json() == {"predictions": [0]}
        assert client.get("/v2/models/iris").status_code == 200
        assert client.get("/api/models/iris").status_code == 401
        assert client.put("/api/models/iris/aliases/x", json={"version": 1}).status_code == 401


def test_the_pickle_upload_is_refused_to_anonymous_and_deploy_callers(
    client: TestClient, tokens: dict[Scope, str]
) -> None:
    """The remote-code-execution path: a pickle with trusted=true."""
    payload = pickle.dumps({"harmless": "stand-in for a hostile pickle"})

    def upload(headers: dict[str, str]) -> Any:
        return client.post(
            "/api/models/evil/versions",
            files={"artifact": ("model.pkl", io.BytesIO(payload))},
            data={"sample": "[[1, 2, 3, 4]]", "trusted": "true"},
            headers=headers,
        )

    assert upload({}).status_code == 401
    refused = upload(_bearer(tokens[Scope.DEPLOY]))
    assert refused.status_code == 403
    assert "trusted" in refused.json()["detail"]
    assert (
        client.get("/api/models", headers=_bearer(tokens[Scope.READ])).json()["models"][0]["name"]
        == "iris"
    )


def test_keys_api_shows_a_token_once_and_never_stores_it(
    client: TestClient, secured: Settings, registry: Registry, tokens: dict[Scope, str]
) -> None:
    admin = _bearer(tokens[Scope.ADMIN])
    created = client.post(
        "/api/keys",
        json={"scope": "predict", "name": "app", "models": ["iris"], "expires_in": "30d"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    token, key_id = created.json()["token"], created.json()["id"]
    assert client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(token)).is_success
    listed = client.get("/api/keys", headers=admin).json()["keys"]
    assert key_id in {k["id"] for k in listed}
    assert token not in str(listed)
    with registry.engine.connect() as connection:
        dump = "\n".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM api_keys"))
    assert token not in dump
    assert token.removeprefix(f"{TOKEN_PREFIX}{key_id}_") not in dump  # the secret part alone
    rotated = client.post(f"/api/keys/{key_id}/rotate", json={"grace": "0s"}, headers=admin)
    assert rotated.status_code == 201
    assert (
        client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(token)).status_code == 401
    )
    new = _bearer(rotated.json()["token"])
    assert client.post("/v1/models/iris:predict", json=ROW, headers=new).is_success
    assert client.delete(f"/api/keys/{rotated.json()['id']}", headers=admin).status_code == 200
    assert client.post("/v1/models/iris:predict", json=ROW, headers=new).status_code == 401
    bad = client.post("/api/keys", json={"scope": "root"}, headers=admin)
    assert bad.status_code == 422


def test_auth_off_on_loopback_needs_no_key(settings: Settings, iris_served: np.ndarray) -> None:
    """The default on 127.0.0.1 (`auto`): a developer's local server stays open."""
    with serving(settings, ["iris"]) as client:
        assert client.post("/v1/models/iris:predict", json=ROW).is_success
        ready = client.get("/readyz").json()
        assert ready["warnings"] == []


def test_an_exposed_server_without_keys_warns_on_readyz(
    settings: Settings, iris_served: np.ndarray
) -> None:
    exposed = settings.model_copy(
        update={"host": "0.0.0.0", "auth": AuthMode.OFF, "insecure": True}
    )
    with serving(exposed, ["iris"]) as client:
        assert "authentication is off" in client.get("/readyz").json()["warnings"][0]


def test_a_change_without_a_key_is_refused_before_its_body_is_read(client: TestClient) -> None:
    """Found by the fuzzer: FastAPI parsed the broken body first and answered 422."""
    answer = client.put(
        "/api/models/iris/aliases/production",
        content=b"\x00",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 401
