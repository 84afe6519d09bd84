"""Drift reaches a real webhook receiver once per episode: at its start, again only after
the repeat interval, and when it ends; a receiver that fails is tried again next time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from modelport.monitoring.profile import DriftReport, capture, compare
from modelport.monitoring.webhooks import DriftAnnouncer


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.failing = False

        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if received.failing:
                    self.send_response(503)
                else:
                    received.messages.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def reports() -> tuple[DriftReport, DriftReport]:
    rng = np.random.default_rng(4)
    reference = capture({"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)})
    stable = compare(reference, {"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)})
    shifted = compare(reference, {"x": rng.normal(3, 1, 5000), "y": rng.normal(3, 1, 5000)})
    assert not stable.dataset.drifted
    assert shifted.dataset.drifted
    return stable, shifted


def test_one_message_per_episode(receiver: Receiver) -> None:
    stable, shifted = reports()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    announce = DriftAnnouncer(url, timedelta(hours=1), "https://models.example.com")
    announce("fraud", 3, stable)
    assert receiver.messages == []
    for _ in range(3):
        announce("fraud", 3, shifted)
    [started] = receiver.messages
    assert (started["event"], started["model"], started["version"]) == ("drift", "fraud", 3)
    assert started["dataset_drift_share"] == 1.0
    assert started["drifted_features"] == ["x", "y"]
    assert started["report"] == (
        "https://models.example.com/api/drift?model=fraud&version=3&format=html"
    )
    announce("fraud", 3, stable)
    announce("fraud", 3, stable)
    assert [m["event"] for m in receiver.messages] == ["drift", "recovered"]


def test_repeats_after_the_interval_and_retries_a_failed_receiver(receiver: Receiver) -> None:
    _, shifted = reports()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    receiver.failing = True
    announce = DriftAnnouncer(url, timedelta(0))
    announce("fraud", 3, shifted)
    assert receiver.messages == []
    receiver.failing = False
    announce("fraud", 3, shifted)
    announce("fraud", 3, shifted)  # repeat interval 0: still drifting, announced again
    assert [m["event"] for m in receiver.messages] == ["drift", "drift"]
    assert receiver.messages[0]["report"].startswith("/api/drift?")
