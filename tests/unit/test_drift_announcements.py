"""Breaches reach a real webhook receiver once per episode: at its start, again only after
the repeat interval, and when it ends; a receiver that fails is tried again next time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from modelport.monitoring.drift import drift_findings
from modelport.monitoring.profile import DriftReport, capture, compare
from modelport.monitoring.webhooks import Announcer
from tests.webhooks import Receiver

DRIFT_REPORT = "/api/drift?model=fraud&version=3&format=html"


def reports() -> tuple[DriftReport, DriftReport]:
    rng = np.random.default_rng(4)
    reference = capture({"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)})
    stable = compare(reference, {"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)})
    shifted = compare(reference, {"x": rng.normal(3, 1, 5000), "y": rng.normal(3, 1, 5000)})
    assert not stable.dataset.drifted
    assert shifted.dataset.drifted
    return stable, shifted


def test_one_message_per_episode(webhook: Receiver) -> None:
    stable, shifted = reports()
    announce = Announcer(webhook.url, timedelta(hours=1), "https://models.example.com")
    announce("drift", "fraud", 3, False, drift_findings(stable), DRIFT_REPORT)
    assert webhook.messages == []
    for _ in range(3):
        announce("drift", "fraud", 3, True, drift_findings(shifted), DRIFT_REPORT)
    announce("quality", "fraud", 3, True, {"breaches": []}, "/api/quality?model=fraud%2F3")
    started, quality = webhook.messages
    assert (started["event"], started["state"]) == ("drift", "breached")
    assert (started["model"], started["version"]) == ("fraud", 3)
    assert started["dataset_drift_share"] == 1.0
    assert started["drifted_features"] == ["x", "y"]
    assert started["report"] == f"https://models.example.com{DRIFT_REPORT}"
    assert (quality["event"], quality["state"]) == ("quality", "breached")  # its own episode
    announce("drift", "fraud", 3, False, drift_findings(stable), DRIFT_REPORT)
    announce("drift", "fraud", 3, False, drift_findings(stable), DRIFT_REPORT)
    states = [(m["event"], m["state"]) for m in webhook.messages]
    assert states == [("drift", "breached"), ("quality", "breached"), ("drift", "recovered")]


def test_repeats_after_the_interval_and_retries_a_failed_receiver(webhook: Receiver) -> None:
    _, shifted = reports()
    webhook.failing = True
    announce = Announcer(webhook.url, timedelta(0))
    announce("drift", "fraud", 3, True, drift_findings(shifted), DRIFT_REPORT)
    assert webhook.messages == []
    webhook.failing = False
    announce("drift", "fraud", 3, True, drift_findings(shifted), DRIFT_REPORT)
    announce("drift", "fraud", 3, True, drift_findings(shifted), DRIFT_REPORT)  # repeat 0
    assert [m["state"] for m in webhook.messages] == ["breached", "breached"]
    assert webhook.messages[0]["report"] == DRIFT_REPORT
