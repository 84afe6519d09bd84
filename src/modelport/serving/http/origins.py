"""Which hosts and web pages may talk to the server: defences a browser makes necessary.

A page on any web site can make a visitor's browser send requests to ``127.0.0.1``: by DNS
rebinding (its own name resolving to loopback, so the ``Host`` header carries that name) or
by a plain cross-site form post (which carries an ``Origin``). A server bound to loopback
therefore answers only requests whose ``Host`` is a loopback name, unless ``allowed_hosts``
says otherwise; and a request that changes state is refused when it comes from a page of
another origin than the server's own or one listed in ``cors_origins``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from modelport.config import Settings
from modelport.errors import ForbiddenError, MalformedRequestError
from modelport.security.policy import is_loopback

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ACCEPTED_HOSTS = 64


class RequestOrigins:
    def __init__(self, allowed_hosts: frozenset[str] | None, cors_origins: frozenset[str]):
        self._hosts = allowed_hosts
        self._origins = cors_origins
        self._accepted: set[bytes] = set()
        """``Host`` values already let through, as sent (a few: names and ports)."""

    def check_host(self, host: bytes | None) -> None:
        """400 for a ``Host`` this server does not answer to (None: every host is fine)."""
        if self._hosts is None or host in self._accepted:
            return
        name = _host_name(host.decode("latin-1") if host else "")
        if name not in self._hosts:
            raise MalformedRequestError(
                f"this server does not answer to the host {name or '(none)'!r}; "
                "list it in MODELPORT_ALLOWED_HOSTS"
            )
        if host is not None and len(self._accepted) < MAX_ACCEPTED_HOSTS:
            self._accepted.add(host)

    def check_origin(self, method: str, origin: bytes | None, host: bytes | None) -> None:
        """403 for a state-changing request sent by a page of a foreign origin."""
        if method in SAFE_METHODS or origin is None:
            return
        text = origin.decode("latin-1")
        if text in self._origins or "*" in self._origins:
            return
        if host is not None and urlsplit(text).netloc == host.decode("latin-1"):
            return  # the server's own pages
        raise ForbiddenError(
            f"requests from pages of {text} may not change this server; "
            "list the origin in MODELPORT_CORS_ORIGINS"
        )


def with_cors(app: ASGIApp, origins: Sequence[str], headers: Sequence[bytes]) -> ASGIApp:
    """``app`` answering CORS for ``origins`` (none: as it is): the request ``headers`` the
    server reads may be sent; the request id, rate-limit state and what answered may be read."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["*"],
        allow_headers=[name.decode() for name in headers],
        expose_headers=[
            "x-request-id",
            "traceresponse",
            "retry-after",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "x-model-name",
            "x-model-version",
            "x-deployment-slot",
        ],
    )


def request_origins(settings: Settings) -> RequestOrigins:
    if settings.allowed_hosts:
        hosts: frozenset[str] | None = (
            None if "*" in settings.allowed_hosts else frozenset(settings.allowed_hosts)
        )
    else:  # loopback: loopback names only; beyond it the operator's proxy knows the names
        hosts = LOOPBACK_NAMES if is_loopback(settings.host) else None
    return RequestOrigins(hosts, frozenset(settings.cors_origins))


def _host_name(host: str) -> str:
    """``example.com:8000`` → ``example.com``; ``[::1]:8000`` → ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
