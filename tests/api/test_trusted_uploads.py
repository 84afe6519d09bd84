"""Trusted uploads: admin keys only, prepared in a child process under limits; upload sizes.

The pickles here run code when loaded, as a hostile one would: they record which process
loaded them, allocate, or spin, so the tests see where and how far the code ran.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from modelport.config import AuthMode, Settings
from modelport.registry import Registry
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.api.conftest import serving


class _Runs:
    """Unpickles as ``function(argument)``: ``eval`` or ``exec`` of the code given."""

    def __init__(self, function: Callable[[str], Any], argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.function, (self.argument,))


def _recording(model: object, marker: Path) -> bytes:
    """A pickle of ``model`` that first appends the pid of the process loading it to ``marker``."""
    record = f"open({str(marker)!r}, 'a').write(str(__import__('os').getpid()) + '\\n')"
    load = f"__import__('pickle').loads({pickle.dumps(model)!r})"
    return pickle.dumps(_Runs(eval, f"({record}, {load})[1]"))


def _secured(make_settings: Callable[..., Settings], **limits: Any) -> Settings:
    return make_settings(auth=AuthMode.REQUIRED, allow_remote_admin=False, **limits)


def _tokens(settings: Settings) -> dict[Scope, str]:
    """One token per scope, made the way `modelport keys create` makes them."""
    registry = Registry.from_settings(settings)
    try:
        store = KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))
        return {scope: store.create(scope).token for scope in Scope}
    finally:
        registry.close()


def _upload(
    client: TestClient,
    name: str,
    payload: bytes,
    token: str | None,
    *,
    filename: str = "model.joblib",
    trusted: bool = True,
) -> Any:
    X = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    return client.post(
        f"/api/models/{name}/versions",
        files={"artifact": (filename, io.BytesIO(payload), "application/octet-stream")},
        data={"sample": json.dumps(X), "trusted": str(trusted).lower()},
        headers={} if token is None else {"Authorization": f"Bearer {token}"},
    )


def _scratch_left(settings: Settings) -> list[Path]:
    scratch = settings.home / "scratch"
    return list(scratch.iterdir()) if scratch.is_dir() else []


def test_an_admin_registers_a_pickle_loaded_only_in_a_child_process(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    settings = _secured(make_settings)
    tokens = _tokens(settings)
    marker = tmp_path / "loaded-by"
    payload = _recording(iris_logreg, marker)
    with serving(settings, []) as client:
        assert _upload(client, "fraud", payload, None).status_code == 401
        refused = _upload(client, "fraud", payload, tokens[Scope.DEPLOY])
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert "admin" in refused.json()["detail"]
        assert not marker.exists()  # refused before anything was loaded
        created = _upload(client, "fraud", payload, tokens[Scope.ADMIN])
        assert created.status_code == 201, created.text
        assert (created.json()["version"], created.json()["trusted"]) == (1, True)
        assert created.json()["signature"]["outputs"][0]["name"] == "label"
    loaders = marker.read_text().split()
    assert len(loaders) == 1
    assert int(loaders[0]) != os.getpid()
    assert _scratch_left(settings) == []
    X, _ = iris_data
    with serving(settings, ["fraud"]) as client:  # serving a trusted version loads it here
        answer = client.post(
            "/v1/models/fraud:predict",
            json={"instances": X[:10].tolist()},
            headers={"Authorization": f"Bearer {tokens[Scope.PREDICT]}"},
        )
    assert answer.json()["predictions"] == iris_logreg.predict(X[:10]).tolist()


@pytest.mark.parametrize(
    ("code", "limit", "limits"),
    [
        ("bytearray(1 << 30)", "MEMORY_BYTES", {"trusted_memory_bytes": 768 * 1024 * 1024}),
        ("while True: pass", "CPU_S", {"trusted_cpu_s": 3}),
        ("import time; time.sleep(60)", "TIMEOUT_S", {"trusted_timeout_s": 4}),
    ],
)
def test_a_pickle_past_a_limit_is_stopped_and_leaves_nothing(
    make_settings: Callable[..., Settings], code: str, limit: str, limits: dict[str, Any]
) -> None:
    settings = _secured(make_settings, **limits)
    tokens = _tokens(settings)
    with serving(settings, []) as client:
        stopped = _upload(client, "hog", pickle.dumps(_Runs(exec, code)), tokens[Scope.ADMIN])
        assert stopped.status_code == 422, stopped.text
        assert stopped.json()["code"] == "artifact_error"
        assert f"MODELPORT_TRUSTED_{limit}" in stopped.json()["detail"]
        missing = client.get(
            "/api/models/hog", headers={"Authorization": f"Bearer {tokens[Scope.READ]}"}
        )
        assert missing.status_code == 404
    assert _scratch_left(settings) == []


def test_without_keys_nobody_uploads_a_trusted_file(
    make_settings: Callable[..., Settings], tmp_path: Path, iris_logreg: LogisticRegression
) -> None:
    """Even with remote changes allowed: trust over HTTP needs an authenticated admin."""
    settings = make_settings(auth=AuthMode.OFF, allow_remote_admin=True)
    marker = tmp_path / "loaded-by"
    with serving(settings, []) as client:
        refused = _upload(client, "fraud", _recording(iris_logreg, marker), None)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert "MODELPORT_AUTH" in refused.json()["detail"]
    assert not marker.exists()


def test_uploads_have_their_own_body_limit(
    make_settings: Callable[..., Settings], tmp_path: Path, iris_logreg: LogisticRegression
) -> None:
    settings = _secured(make_settings, max_body_bytes=1000, max_upload_bytes=200_000)
    tokens = _tokens(settings)
    path = tmp_path / "model.skops"
    sio.dump(iris_logreg, path)
    model = path.read_bytes()
    assert 1000 < len(model) < 150_000
    with serving(settings, []) as client:
        created = _upload(
            client, "iris", model, tokens[Scope.DEPLOY], filename="model.skops", trusted=False
        )
        assert created.status_code == 201, created.text
        too_large = _upload(
            client,
            "iris",
            model + b"\0" * 200_000,
            tokens[Scope.DEPLOY],
            filename="model.skops",
            trusted=False,
        )
        assert (too_large.status_code, too_large.json()["code"]) == (413, "payload_too_large")
        assert "MODELPORT_MAX_UPLOAD_BYTES" in too_large.json()["detail"]
        alias = client.put(  # every other route keeps the small limit
            "/api/models/iris/aliases/production",
            json={"version": 1, "padding": "x" * 2000},
            headers={"Authorization": f"Bearer {tokens[Scope.DEPLOY]}"},
        )
        assert alias.status_code == 413
        assert "MODELPORT_MAX_BODY_BYTES" in alias.json()["detail"]
        inference = client.post(
            "/v1/models/iris:predict",
            json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 100},
            headers={"Authorization": f"Bearer {tokens[Scope.PREDICT]}"},
        )
        assert inference.status_code == 413
        assert "MODELPORT_MAX_BODY_BYTES" in inference.json()["detail"]
    assert _scratch_left(settings) == []
