"""Authorisation: whether a caller's key covers an action.

With authentication off every call is allowed (the mode decides, see :func:`auth_required`).
With it on, a call needs a key whose scope includes the one the action needs and, for a key
restricted to some models, one of those models. Models marked ``public`` answer inference and
metadata calls without a key; the management API never does.
"""

from __future__ import annotations

import ipaddress

from modelport.config import AuthMode, Settings
from modelport.errors import ForbiddenError, UnauthorizedError
from modelport.security.auth import Authenticator
from modelport.security.keys import ApiKey, Scope

OPEN_SCOPES = frozenset({Scope.READ, Scope.PREDICT})
"""What a public model lets anyone do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_required(settings: Settings) -> bool:
    """``auto``: required as soon as the server listens beyond loopback."""
    if settings.auth == AuthMode.AUTO:
        return not is_loopback(settings.host)
    return settings.auth == AuthMode.REQUIRED


def exposure_warning(settings: Settings) -> str | None:
    """What is wrong with serving ``host`` without keys; None when nothing is."""
    if auth_required(settings) or is_loopback(settings.host):
        return None
    return (
        f"authentication is off while the server listens on {settings.host}: anyone who "
        "reaches the port can predict and read the registry"
    )


class AccessPolicy:
    def __init__(
        self, authenticator: Authenticator, required: bool, public_models: frozenset[str]
    ) -> None:
        self.authenticator = authenticator
        self.required = required
        self._public = public_models

    def check(
        self,
        key: ApiKey | None,
        scope: Scope,
        model: str | None = None,
        *,
        public_ok: bool = False,
    ) -> None:
        """Raise 401 (no key) or 403 (a key that does not cover this) unless allowed;
        ``public_ok``: a public model's inference or metadata, open to anyone."""
        if not self.required:
            return
        if public_ok and model in self._public and scope in OPEN_SCOPES:
            return
        if key is None:
            raise UnauthorizedError(
                "this server requires an API key: send `Authorization: Bearer <key>` "
                "or `X-API-Key: <key>`"
            )
        if not key.scope.grants(scope):
            raise ForbiddenError(
                f"API key {key.id} has scope {key.scope.value}; this needs {scope.value}"
            )
        if model is not None and not key.allows_model(model):
            allowed = ", ".join(key.models or ())
            raise ForbiddenError(f"API key {key.id} may only use the models {allowed}")
