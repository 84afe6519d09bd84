"""Drift announced to a webhook: once when a version starts drifting, again only if it still
drifts after ``repeat``, and once when it recovers; never at every computation."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from modelport.monitoring.profile import DriftReport

log = logging.getLogger("modelport.monitoring")

TIMEOUT_S = 5.0


class DriftAnnouncer:
    def __init__(self, url: str, repeat: timedelta, report_base: str = "") -> None:
        """``report_base``: where the server is reached (``https://models.example.com``), to
        put an absolute link to the HTML report in each message; empty: a relative one."""
        self._url = url
        self._repeat_s = repeat.total_seconds()
        self._report_base = report_base.rstrip("/")
        self._announced: dict[tuple[str, int], float] = {}
        """Versions announced as drifting, and when."""

    def __call__(self, model: str, version: int, report: DriftReport) -> None:
        key = (model, version)
        drifting = report.dataset.drifted or (
            report.predictions is not None and report.predictions.drifted
        )
        last = self._announced.get(key)
        now = time.monotonic()
        if drifting and (last is None or now - last >= self._repeat_s):
            if self._post(self._message("drift", model, version, report)):
                self._announced[key] = now
        elif (
            not drifting
            and last is not None
            and self._post(self._message("recovered", model, version, report))
        ):
            del self._announced[key]

    def _message(
        self, event: str, model: str, version: int, report: DriftReport
    ) -> dict[str, object]:
        query = urlencode({"model": model, "version": version, "format": "html"})
        return {
            "event": event,
            "model": model,
            "version": version,
            "rows": report.rows,
            "dataset_drift_share": report.dataset.share,
            "drifted_features": list(report.drifted_features),
            "predictions_drifted": None
            if report.predictions is None
            else report.predictions.drifted,
            "report": f"{self._report_base}/api/drift?{query}",
        }

    def _post(self, message: dict[str, object]) -> bool:
        """True once the receiver took it; a failure is logged and retried next time."""
        import httpx  # only where a webhook is set: a server does not load it otherwise

        try:
            httpx.post(self._url, json=message, timeout=TIMEOUT_S).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("drift webhook %s failed: %s", message["event"], exc)
            return False
        return True
