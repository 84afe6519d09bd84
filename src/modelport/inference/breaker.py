"""A circuit breaker for optional outside services (Redis for the cache and the rate limiter).

When such a service fails, callers fall back (a cache miss, an allowed request) and leave it
alone for ``cooldown_s``: a hanging service must not add a timeout to every request, nor a
refusing one a log line per request. One caller per cooldown probes it again.
"""

from __future__ import annotations

import logging
import time


class Breaker:
    """Logs once per state change (WARNING when a service fails, INFO when it is back)."""

    def __init__(
        self, name: str, cooldown_s: float, log: logging.Logger, fallback: str = "skipping it"
    ) -> None:
        self._name = name
        self._cooldown_s = cooldown_s
        self._log = log
        self._fallback = fallback
        self._open_until: float | None = None

    def allow(self) -> bool:
        """True when a call may go through: the breaker is closed, or this caller is the probe.

        The probe pushes the cooldown forward, so concurrent requests do not all wait on a
        service that may still be hanging.
        """
        if self._open_until is None:
            return True
        now = time.monotonic()
        if now < self._open_until:
            return False
        self._open_until = now + self._cooldown_s
        return True

    def failed(self, exc: Exception) -> None:
        if self._open_until is None:
            self._log.warning(
                "%s unavailable (%s); %s, next try in %.0f s",
                self._name,
                exc,
                self._fallback,
                self._cooldown_s,
            )
        self._open_until = time.monotonic() + self._cooldown_s

    def succeeded(self) -> None:
        if self._open_until is not None:
            self._log.info("%s reachable again", self._name)
            self._open_until = None
