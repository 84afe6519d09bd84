"""Authentication: which key, if any, a request carries.

Servers check tokens against an in-memory copy of the key table, so a request costs one HMAC
and no database read. The copy is reloaded every ``auth_refresh_s`` (revocations reach every
worker and replica within that time) and at once when a token names an id it does not know
(a key created a moment ago works on its first request). If the database cannot be read, the
last copy keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
import time

from modelport.errors import ModelportError, UnauthorizedError
from modelport.security.keys import ApiKey, KeyStore, key_id_of
from modelport.store.tables import utcnow

log = logging.getLogger("modelport.security")

MIN_RELOAD_INTERVAL_S = 1.0
"""Unknown ids trigger a reload at most this often (later ones wait for it): a flood of
made-up tokens costs about one read per second, not one per request."""


def credential_from(authorization: str | None, api_key: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of ``X-API-Key``."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    return None


class Authenticator:
    def __init__(self, store: KeyStore, refresh_s: float) -> None:
        self.store = store
        self._refresh_s = refresh_s
        self._keys: dict[str, tuple[ApiKey, str]] = {}
        self._loaded_at = float("-inf")
        self._reload: asyncio.Task[None] | None = None
        self._reload_started = float("-inf")
        self._read_error: ModelportError | None = None

    def key(self, key_id: str | None) -> ApiKey | None:
        """An already authenticated caller's key, by id."""
        entry = None if key_id is None else self._keys.get(key_id)
        return None if entry is None else entry[0]

    async def authenticate(self, token: str | None) -> ApiKey | None:
        """The key ``token`` belongs to; None without a token; 401 for any bad token."""
        if token is None:
            return None
        key_id = key_id_of(token)
        if key_id is None:
            raise UnauthorizedError("the API key is malformed; keys look like mpk_<id>_<secret>")
        age = time.monotonic() - self._loaded_at
        if key_id not in self._keys:
            if age < MIN_RELOAD_INTERVAL_S:  # wait for the next read rather than refuse
                await asyncio.sleep(MIN_RELOAD_INTERVAL_S - age)
            await self.reload()
        elif age > self._refresh_s:
            await self.reload()
        entry = self._keys.get(key_id)
        if entry is None and self._read_error is not None:
            raise self._read_error  # an unknown id, and the table could not be read: 503
        if entry is None or not self.store.hasher.matches(token, entry[1]):
            raise UnauthorizedError("the API key is not valid")
        key = entry[0]
        if not key.active(utcnow()):
            state = "was revoked" if key.revoked_at is not None else "has expired"
            raise UnauthorizedError(f"the API key {key.id} {state}")
        return key

    async def reload(self) -> None:
        """Read the key table again: one read at a time, shared by concurrent callers, and
        always one that began after this call (an earlier one may predate a new key)."""
        requested = time.monotonic()
        while True:
            if self._reload is None or self._reload.done():
                self._reload_started = time.monotonic()
                self._reload = asyncio.create_task(self._read())
            task, started = self._reload, self._reload_started
            await asyncio.shield(task)
            if started >= requested:
                return

    async def _read(self) -> None:
        try:
            self._keys = await asyncio.to_thread(self.store.snapshot)
            self._read_error = None
        except ModelportError as exc:
            if self._read_error is None:
                log.warning("cannot reload API keys, the last copy stays in use: %s", exc.detail)
            self._read_error = exc
        self._loaded_at = time.monotonic()
