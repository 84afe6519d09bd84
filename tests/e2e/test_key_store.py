"""The key table on SQLite and on the real PostgreSQL: what is stored, what is audited, and
that two servers given the same secret agree on every key."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from modelport.config import Settings
from modelport.errors import UnauthorizedError
from modelport.registry import Actor, Registry
from modelport.security.auth import Authenticator
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret

ADMIN = Actor("key:0123456789ab", key_id="0123456789ab", request_id="req-9")


def test_keys_are_stored_hashed_and_every_change_is_audited(backend: Settings) -> None:
    registry = Registry.from_settings(backend)
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(backend)))
    issued = store.create(Scope.DEPLOY, actor=ADMIN, name="ci", models=["iris"], rate_limit="5/s")
    rotated = store.rotate(issued.key.id, grace=timedelta(hours=1), actor=ADMIN)
    revoked = store.revoke(rotated.key.id, actor=ADMIN)
    with registry.engine.connect() as connection:
        stored = "\n".join(str(r) for r in connection.execute(text("SELECT * FROM api_keys")))
    assert issued.token not in stored
    assert rotated.token not in stored
    assert revoked.revoked_at is not None
    old = store.get(issued.key.id)
    assert old.revoked_at is None
    assert old.expires_at is not None  # the grace hour
    entries = registry.audit.entries()
    assert [(e.action, e.target) for e in entries] == [
        ("key.create", f"key:{issued.key.id}"),
        ("key.rotate", f"key:{issued.key.id}"),
        ("key.revoke", f"key:{rotated.key.id}"),
    ]
    assert all(e.actor == ADMIN.name and e.request_id == "req-9" for e in entries)
    assert entries[1].after is not None
    assert entries[1].after["replaced_by"] == rotated.key.id
    assert "digest" not in str(entries[0].after)
    assert registry.audit.verify().ok
    registry.close()


def test_replicas_with_one_secret_accept_each_others_keys(backend: Settings) -> None:
    first, second = Registry.from_settings(backend), Registry.from_settings(backend)
    secret = b"s" * 40
    token = KeyStore(first.database, KeyHasher(lambda: secret)).create(Scope.PREDICT).token

    async def check(secret_of_second: bytes) -> str | None:
        store = KeyStore(second.database, KeyHasher(lambda: secret_of_second))
        key = await Authenticator(store, refresh_s=60).authenticate(token)
        return None if key is None else key.id

    assert asyncio.run(check(secret)) == token.split("_")[1]
    with pytest.raises(UnauthorizedError):  # another secret: the digest cannot match
        asyncio.run(check(b"t" * 40))
    first.close()
    second.close()
