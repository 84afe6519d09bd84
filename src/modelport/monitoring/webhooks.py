"""Breaches announced to a webhook: once when a version starts drifting (or its quality passes
a limit), again only if it still does after ``repeat``, and once when it recovers; never at
every computation.

A message is JSON: ``event`` (``drift`` or ``quality``), ``state`` (``breached`` or
``recovered``), ``model``, ``version``, what the check found, and ``report``: a link to the
report on this server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from modelport.config import Settings

log = logging.getLogger("modelport.monitoring")

TIMEOUT_S = 5.0


class Announcer:
    def __init__(self, url: str, repeat: timedelta, report_base: str = "") -> None:
        """``report_base``: where the server is reached (``https://models.example.com``), to
        put an absolute link to the report in each message; empty: a relative one."""
        self._url = url
        self._repeat_s = repeat.total_seconds()
        self._report_base = report_base.rstrip("/")
        self._announced: dict[tuple[str, str, int], float] = {}
        """Breaches announced, by event, model and version, and when."""

    def __call__(
        self,
        event: str,
        model: str,
        version: int,
        breached: bool,
        findings: Mapping[str, Any],
        report: str,
    ) -> None:
        """``report``: the report's path and query on this server."""
        key = (event, model, version)
        last = self._announced.get(key)
        now = time.monotonic()
        if breached and (last is None or now - last >= self._repeat_s):
            state = "breached"
        elif not breached and last is not None:
            state = "recovered"
        else:
            return
        message = {
            "event": event,
            "state": state,
            "model": model,
            "version": version,
            **findings,
            "report": f"{self._report_base}{report}",
        }
        if not self._post(message):
            return
        if breached:
            self._announced[key] = now
        else:
            del self._announced[key]

    def _post(self, message: dict[str, Any]) -> bool:
        """True once the receiver took it; a failure is logged and retried next time."""
        import httpx  # only where a webhook is set: a server does not load it otherwise

        try:
            httpx.post(self._url, json=message, timeout=TIMEOUT_S).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("%s webhook (%s) failed: %s", message["event"], message["state"], exc)
            return False
        return True


def announcer_of(settings: Settings) -> Announcer | None:
    """The configured webhook's announcer; None without ``alert_webhook_url``."""
    if not settings.alert_webhook_url:
        return None
    repeat = timedelta(seconds=settings.alert_webhook_repeat_s)
    return Announcer(settings.alert_webhook_url, repeat, settings.public_url or "")
