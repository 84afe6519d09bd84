"""Model cards over HTTP: rendered from the registry, edited with a deploy key (audited),
escaped wherever a registrant's text lands on a page."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import AuthMode, Settings
from modelport.registry import Registry
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.api.conftest import serving

CARD = "/api/models/iris/versions/1/card"
HOSTILE = '<script>alert("card")</script> & <img src=x onerror=alert(1)>'


def _register(settings: Settings, model: LogisticRegression, X: np.ndarray) -> None:
    modelport.log_model(
        model,
        "iris",
        X[:20],
        description=HOSTILE,
        metrics={"accuracy": 0.97, "<b>bold</b>": 1.0},
        params={"C": 1.0},
        lineage={"run": "abc123"},
        settings=settings,
    )


def _tokens(settings: Settings, registry: Registry) -> dict[Scope, str]:
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))
    return {scope: store.create(scope).token for scope in (Scope.READ, Scope.DEPLOY)}


def test_card_is_rendered_edited_and_audited(
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    secured = settings.model_copy(update={"auth": AuthMode.REQUIRED})
    _register(secured, iris_logreg, iris_data[0])
    registry.set_alias("iris", "production", 1)
    tokens = _tokens(secured, registry)
    read = {"Authorization": f"Bearer {tokens[Scope.READ]}"}
    deploy = {"Authorization": f"Bearer {tokens[Scope.DEPLOY]}"}
    with serving(secured, ["iris"]) as client:
        fields = client.get(CARD, params={"format": "json"}, headers=read).json()
        assert fields["intended_use"] == ""
        assert "intended_use" in fields["missing"]

        assert client.put(CARD, json={"intended_use": "x"}, headers=read).status_code == 403
        edited = client.put(
            CARD,
            json={
                "intended_use": "Sorting iris flowers in teaching demos.",
                "limitations": "Three species only.",
                "owners": ["ml-team@example.com", "ml-team@example.com"],
            },
            headers=deploy,
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["owners"] == ["ml-team@example.com"]
        assert edited.json()["missing"] == ["training_data", "ethical_considerations"]
        # a later edit of another field keeps the first one's text
        client.put(CARD, json={"training_data": "Fisher's iris data"}, headers=deploy)

        page = client.get(CARD, headers=read)
        assert page.headers["content-type"].startswith("text/markdown")
        text = page.text
        for expected in (
            "# Model card: iris/1",
            "Sorting iris flowers in teaching demos.",
            "Three species only.",
            "Fisher's iris data",
            "| accuracy | 0.97 |",
            "| C | 1.0 |",
            "| run | abc123 |",
            "iris@production",
            "model.skops",
        ):
            assert expected in text, expected
        for sha in registry.get_version("iris", 1).files.values():
            assert sha in text
        assert "<script>" not in text
        assert "<b>" not in text
        assert "\\<script\\>" in text

        as_html = client.get(CARD, headers={**read, "Accept": "text/html,*/*"})
        assert as_html.headers["content-type"].startswith("text/html")
        assert "<script>" not in as_html.text
        assert "<img" not in as_html.text
        assert "&lt;script&gt;alert(&quot;card&quot;)&lt;/script&gt;" in as_html.text
        assert "&lt;b&gt;bold&lt;/b&gt;" in as_html.text
        assert client.get(CARD, params={"format": "html"}, headers=read).text == as_html.text

    entries = [e for e in registry.audit.entries(limit=100) if e.action == "version.card"]
    assert len(entries) == 2
    assert entries[-1].target == "iris/1"
    assert entries[-1].after is not None
    assert entries[-1].after["card"]["limitations"] == "Three species only."


def test_missing_versions_and_bad_fields_are_clear_errors(
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    _register(settings, iris_logreg, iris_data[0])
    admin = settings.model_copy(update={"allow_remote_admin": True})
    with serving(admin, ["iris"]) as client:
        missing = client.get("/api/models/iris/versions/9/card")
        assert missing.status_code == 404
        assert missing.json()["code"] == "model_version_not_found"
        assert client.get("/api/models/nope/versions/1/card").json()["code"] == "model_not_found"
        assert client.put("/api/models/nope/versions/1/card", json={}).status_code == 404
        bad = client.put(CARD, json={"owners": ["ok", ""]})
        assert bad.status_code == 422
        assert bad.json()["pointer"] == "/owners/1"
        assert client.get(CARD, params={"format": "pdf"}).status_code == 422
    assert not [e for e in registry.audit.entries(limit=100) if e.action == "version.card"]
