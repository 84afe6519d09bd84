"""Rate limits on the served app: per key, per model, headers, and what a refusal looks like."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.config import AuthMode, ModelOptions, Settings
from modelport.errors import InvalidInputError
from modelport.registry import Registry
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.api.conftest import serving

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
PREDICT = "/v1/models/iris:predict"


def _token(settings: Settings, registry: Registry, rate_limit: str | None = None) -> str:
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))
    return store.create(Scope.PREDICT, rate_limit=rate_limit).token


def test_each_key_has_its_own_budget(
    settings: Settings, registry: Registry, iris_served: np.ndarray
) -> None:
    secured = settings.model_copy(update={"auth": AuthMode.REQUIRED, "key_rate_limit": "3/m"})
    own, default, other = (
        _token(secured, registry, "2/m"),
        _token(secured, registry),
        _token(secured, registry),
    )
    with serving(secured, ["iris"]) as client:

        def statuses(token: str, times: int) -> list[int]:
            headers = {"Authorization": f"Bearer {token}"}
            return [
                client.post(PREDICT, json=ROW, headers=headers).status_code for _ in range(times)
            ]

        assert statuses(own, 3) == [200, 200, 429]
        assert statuses(default, 4) == [200, 200, 200, 429]
        assert statuses(other, 1) == [200]  # another key's spending is not this one's
        answer = client.post(PREDICT, json=ROW, headers={"X-API-Key": other})
        assert answer.headers["ratelimit-limit"] == "3"
        assert answer.headers["ratelimit-remaining"] == "1"
        refused = client.post(PREDICT, json=ROW, headers={"X-API-Key": own})
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["error"]  # V1's own key as well
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"


def test_a_model_budget_holds_for_anonymous_callers_too(
    settings: Settings, iris_served: np.ndarray
) -> None:
    limited = settings.model_copy(
        update={"model_options": {"iris": ModelOptions(rate_limit="2/h")}}
    )
    with serving(limited, ["iris"]) as client:
        codes = [client.post(PREDICT, json=ROW).status_code for _ in range(3)]
        v2 = client.post(
            "/v2/models/iris/infer",
            json={
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}
                ]
            },
        )
    assert codes == [200, 200, 429]
    assert v2.status_code == 429  # one budget across protocols


@pytest.mark.parametrize("budget", ["fast", "0/s", "10/s:0", "10/fortnight"])
def test_unreadable_budgets_are_refused_when_keys_are_made(
    settings: Settings, registry: Registry, budget: str
) -> None:
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))
    with pytest.raises(InvalidInputError, match="rate limit"):
        store.create(Scope.PREDICT, rate_limit=budget)
