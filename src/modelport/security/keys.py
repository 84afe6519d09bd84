"""API keys: issued once, stored as a keyed hash, looked up by their public id.

A token reads ``mpk_<id>_<secret>``. The id is public (listings, the audit log, metrics); the
database keeps only HMAC-SHA-256 of the whole token under the server secret
(:mod:`modelport.security.secret`), which never enters the database: a stolen copy of the
database yields no usable key. Tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelport.errors import ConfigurationError, InvalidInputError, NotFoundError
from modelport.registry.address import check_name
from modelport.registry.audit import Actor, append
from modelport.security.ratelimit import Limit
from modelport.store.tables import ApiKeyRow, utcnow
from modelport.store.unit_of_work import Database

TOKEN_PREFIX = "mpk_"
_TOKEN = re.compile(r"^mpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Scope(StrEnum):
    """What a key may do; each scope includes the ones before it."""

    READ = "read"
    """List and get models, versions, aliases, metadata, metrics."""
    PREDICT = "predict"
    """Inference (and later feedback)."""
    DEPLOY = "deploy"
    """Register versions, move aliases and stages (and later deployments)."""
    ADMIN = "admin"
    """Keys, trust, the audit log: everything."""

    def grants(self, needed: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scope: Scope
    models: tuple[str, ...] | None
    rate_limit: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def allows_model(self, name: str) -> bool:
        return self.models is None or name in self.models

    def to_dict(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope.value,
            "models": None if self.models is None else list(self.models),
            "rate_limit": self.rate_limit,
            "created_by": self.created_by,
            "created_at": when(self.created_at),
            "expires_at": when(self.expires_at),
            "revoked_at": when(self.revoked_at),
            "active": self.active(utcnow()),
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key and its token; the token is shown this once and never stored."""

    key: ApiKey
    token: str


def key_id_of(token: str) -> str | None:
    """The id a well-formed token names; None for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


class KeyHasher:
    """HMAC-SHA-256 of tokens under the server secret, read on first use (a server that
    never checks a key never needs one)."""

    def __init__(self, server_secret: Callable[[], bytes]) -> None:
        self._read_secret = server_secret
        self._secret: bytes | None = None

    def digest(self, token: str) -> str:
        if self._secret is None:
            self._secret = self._read_secret()
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    def matches(self, token: str, digest: str) -> bool:
        return hmac.compare_digest(self.digest(token), digest)


class KeyStore:
    """Keys in the registry database."""

    def __init__(self, database: Database, hasher: KeyHasher) -> None:
        self._db = database
        self.hasher = hasher

    def create(
        self,
        scope: Scope,
        *,
        actor: Actor | None = None,
        name: str = "",
        models: Sequence[str] | None = None,
        expires_in: timedelta | None = None,
        rate_limit: str | None = None,
    ) -> IssuedKey:
        """A new key, recorded in the audit log in the same transaction."""
        for model in models or ():
            check_name(model)
        if rate_limit is not None:
            _check_budget(rate_limit)
        actor = actor or Actor.local()
        with self._db.write() as s:
            issued = self._insert(s, scope, actor, name, models, expires_in, rate_limit)
            append(s, actor, "key.create", f"key:{issued.key.id}", None, _facts(issued.key))
            return issued

    def list(self, *, include_inactive: bool = False) -> list[ApiKey]:
        keys = [key for key, _ in self.snapshot().values()]
        now = utcnow()
        return [k for k in keys if include_inactive or k.active(now)]

    def get(self, key_id: str) -> ApiKey:
        with self._db.read() as s:
            return _key(self._row(s, key_id))

    def revoke(self, key_id: str, *, actor: Actor | None = None) -> ApiKey:
        with self._db.write() as s:
            row = self._row(s, key_id)
            before = _facts(_key(row))
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            key = _key(row)
            append(s, actor, "key.revoke", f"key:{key_id}", before, _facts(key))
            return key

    def rotate(self, key_id: str, *, grace: timedelta, actor: Actor | None = None) -> IssuedKey:
        """A new key with the same name, scope, models and remaining lifetime; the old one
        keeps working for ``grace`` (0: it stops now), so clients can switch without a gap."""
        actor = actor or Actor.local()
        now = utcnow()
        with self._db.write() as s:
            row = self._row(s, key_id)
            old = _key(row)
            remaining = None if old.expires_at is None else max(old.expires_at - now, timedelta(0))
            issued = self._insert(
                s, old.scope, actor, old.name, old.models, remaining, old.rate_limit
            )
            if grace <= timedelta(0):
                row.revoked_at = row.revoked_at or now
            elif row.expires_at is None or row.expires_at > now + grace:
                row.expires_at = now + grace
            after = {**_facts(_key(row)), "replaced_by": issued.key.id}
            append(s, actor, "key.rotate", f"key:{key_id}", _facts(old), after)
            return issued

    def _insert(
        self,
        s: Session,
        scope: Scope,
        actor: Actor,
        name: str,
        models: Sequence[str] | None,
        expires_in: timedelta | None,
        rate_limit: str | None,
    ) -> IssuedKey:
        key_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        row = ApiKeyRow(
            id=key_id,
            name=name,
            scope=scope.value,
            models=sorted(set(models)) if models else None,
            rate_limit=rate_limit,
            digest=self.hasher.digest(token),
            created_by=actor.name,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        s.add(row)
        s.flush()
        return IssuedKey(_key(row), token)

    def snapshot(self) -> dict[str, tuple[ApiKey, str]]:
        """Every key with its digest, by id: what a server authenticates against."""
        with self._db.read() as s:
            rows = s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)).all()
            return {row.id: (_key(row), row.digest) for row in rows}

    @staticmethod
    def _row(s: Session, key_id: str) -> ApiKeyRow:
        row: ApiKeyRow | None = s.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFoundError(f"no API key with id {key_id!r} (see `modelport keys list`)")
        return row


def _check_budget(text: str) -> None:
    """Refuse a budget no server could read, as the caller's mistake (422)."""
    try:
        Limit.parse(text)
    except ConfigurationError as exc:
        raise InvalidInputError(exc.detail, pointer="/rate_limit") from exc


def parse_scope(text: str) -> Scope:
    try:
        return Scope(text)
    except ValueError:
        choices = ", ".join(s.value for s in Scope)
        raise InvalidInputError(f"unknown scope {text!r}; expected one of {choices}") from None


def _facts(key: ApiKey) -> dict[str, Any]:
    """What the audit log keeps of a key: everything but its digest."""
    facts = key.to_dict()
    del facts["active"]
    return facts


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scope=Scope(row.scope),
        models=None if row.models is None else tuple(row.models),
        rate_limit=row.rate_limit,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
