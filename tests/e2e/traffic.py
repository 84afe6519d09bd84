"""Steady request traffic from threads, every answer kept: for tests that change what serves
while requests keep coming (rollouts, switches, swaps)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np


def body(rng: np.random.Generator) -> dict[str, Any]:
    return {"instances": [rng.uniform(0, 1, 3).round(3).tolist()]}


@dataclass
class Answer:
    at: float
    status: int
    slot: str | None
    version: str | None
    value: float | None


@dataclass
class Load:
    """Requests sent one after another from a thread until stopped; every answer kept."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = np.random.default_rng(0)
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                self.answers.append(send(client, self.url, body(rng), self.headers))

    def stop(self) -> None:
        self._stop.set()

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]


def send(
    client: httpx.Client, url: str, payload: dict[str, Any], headers: dict[str, str]
) -> Answer:
    """One request; a connection that fails counts as status 0 (a failure, never skipped)."""
    try:
        response = client.post(url, json=payload, headers=headers)
    except httpx.HTTPError:
        return Answer(time.monotonic(), 0, None, None, None)
    value = response.json()["predictions"][0] if response.status_code == 200 else None
    return Answer(
        time.monotonic(),
        response.status_code,
        response.headers.get("x-deployment-slot"),
        response.headers.get("x-model-version"),
        value,
    )
