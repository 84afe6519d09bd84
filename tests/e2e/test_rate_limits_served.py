"""Two worker processes share one key's budget through Redis, within 10 %."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import AuthMode, Settings
from modelport.registry import Registry
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.conftest import port_open, service_missing

RATE, BURST = 20, 20


def test_two_workers_share_one_budget_through_redis(
    live_server: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis on 127.0.0.1:6379")
    shared = settings.model_copy(
        update={"auth": AuthMode.REQUIRED, "rate_limit_url": SecretStr("redis://127.0.0.1:6379/15")}
    )
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=shared)
    registry = Registry.from_settings(shared)
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(shared)))
    token = store.create(Scope.PREDICT, rate_limit=f"{RATE}/s:{BURST}").token
    registry.close()
    server = live_server(["iris"], shared, "--workers", "2")
    url = f"{server.url}/v1/models/iris:predict"
    headers = {"Authorization": f"Bearer {token}"}

    def hammer(deadline: float) -> list[int]:
        codes = []
        with httpx.Client(headers=headers) as client:
            while time.monotonic() < deadline:
                codes.append(
                    client.post(url, json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).status_code
                )
        return codes

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:  # 8 connections spread over both workers
        codes = [c for part in pool.map(hammer, [started + 3.0] * 8) for c in part]
    elapsed = time.monotonic() - started
    assert server.terminate() == 0
    expected = BURST + RATE * elapsed
    allowed = codes.count(200)
    assert set(codes) == {200, 429}
    assert abs(allowed - expected) <= 0.1 * expected, (allowed, expected, len(codes))
