"""GET /api/audit and /api/audit/verify on the real app; the management routes record who
changed what (anonymous until API keys, with the request id and the client's address)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from modelport.config import Settings
from modelport.registry import Actor


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allow_remote_admin=True)


def test_http_changes_are_listed_with_filters_and_pages(
    serve: Any, iris_served: np.ndarray
) -> None:
    with serve(["iris"]) as client:
        moved = client.put(
            "/api/models/iris/aliases/production",
            json={"version": 1},
            headers={"x-request-id": "req-42"},
        )
        assert moved.status_code == 200, moved.text
        staged = client.post("/api/models/iris/versions/1/stage", json={"stage": "Staging"})
        assert staged.status_code == 200, staged.text

        listed = client.get("/api/audit").json()
        assert [e["action"] for e in listed["entries"]] == [
            "model.register",
            "alias.set",
            "version.stage",
        ]
        assert listed["next_after_id"] is None
        register, alias, stage = listed["entries"]
        assert register["actor"] == Actor.local().name  # registered by the SDK, on this machine
        assert (alias["actor"], alias["key_id"], alias["request_id"], alias["client"]) == (
            "anonymous",
            None,
            "req-42",
            "testclient",
        )
        assert (alias["target"], alias["before"], alias["after"]) == (
            "iris@production",
            None,
            {"version": 1},
        )
        assert stage["after"] == {"stage": "Staging"}

        def ids(**query: Any) -> list[int]:
            answer = client.get("/api/audit", params=query)
            assert answer.status_code == 200, answer.text
            return [e["id"] for e in answer.json()["entries"]]

        assert ids(action="alias.set") == [2]
        assert ids(actor="anonymous") == [2, 3]
        assert ids(target="iris/1") == [1, 3]
        assert ids(target="iris") == [1, 2, 3]
        assert ids(since="1h") == [1, 2, 3]
        assert ids(until="2000-01-01T00:00:00") == []
        page = client.get("/api/audit", params={"limit": 2}).json()
        assert page["next_after_id"] == 2
        assert ids(after_id=page["next_after_id"]) == [3]

        verified = client.get("/api/audit/verify").json()
        assert (verified["ok"], verified["count"], verified["broken_id"]) == (True, 3, None)
        assert verified["head"] == stage["hash"]


def test_bad_filters_are_422_problems(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        for query, pointer in (({"since": "yesterday"}, "/since"), ({"until": "7x"}, "/until")):
            answer = client.get("/api/audit", params=query)
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["pointer"] == pointer
        assert client.get("/api/audit", params={"limit": 0}).status_code == 422
