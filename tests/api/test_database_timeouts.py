"""A database that accepts connections and never answers: calls fail in bounded time with 503.

The "database" is a real TCP listener on loopback that accepts every connection and never
sends a byte, which is what a hung server or a half-open proxy looks like to a client.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelport.config import Settings
from modelport.errors import StorageUnavailableError
from modelport.registry import Registry

TIMEOUT_S = 2.0  # libpq's smallest connect_timeout
BOUND_S = 4 * TIMEOUT_S  # generous for a loaded machine; without a timeout it never returns


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A PostgreSQL URL whose server accepts TCP and then says nothing, ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so that the accepting thread notices the end of the test
    held: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        yield f"postgresql+psycopg://modelport@127.0.0.1:{port}/modelport"
    finally:
        closing.set()
        thread.join(timeout=5)
        listener.close()
        for connection in held:
            connection.close()


@pytest.fixture
def silent_settings(make_settings: Callable[..., Settings], silent_database: str) -> Settings:
    return make_settings(database_url=silent_database, db_timeout_s=TIMEOUT_S)  # type: ignore[no-any-return]


def test_a_registry_call_fails_in_bounded_time(silent_settings: Settings) -> None:
    registry = Registry.from_settings(silent_settings)  # connects lazily: this cannot hang
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError):
            registry.list_models()
        assert time.monotonic() - started < BOUND_S
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError):  # no call is stuck behind the first
            registry.get_model("iris")
        assert time.monotonic() - started < BOUND_S
    finally:
        registry.close()


def test_the_api_answers_503_in_bounded_time(
    serve: Any, silent_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="modelport.store"),
        serve([], settings=silent_settings) as client,
    ):
        started = time.monotonic()
        answer = client.get("/api/models")
        elapsed = time.monotonic() - started
    assert elapsed < BOUND_S
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["code"] == "storage_unavailable"
    # the cause is logged for operators, never shown to an anonymous client
    assert "timeout" in caplog.text
    assert answer.json()["detail"] == "the registry database is unreachable; retry shortly"


def test_a_503_names_neither_host_nor_driver(
    serve: Any, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # nothing listens there once the block ends
    settings = make_settings(database_url=f"postgresql+psycopg://secret-user@127.0.0.1:{port}/db")
    with (
        caplog.at_level(logging.WARNING, logger="modelport.store"),
        serve([], settings=settings) as client,
    ):
        answer = client.get("/api/models/iris")
    assert answer.status_code == 503
    body = answer.text
    for internal in ("127.0.0.1", str(port), "secret-user", "psycopg", "refused"):
        assert internal not in body
    assert f"port {port}" in caplog.text
    assert any(r.name == "modelport.store" for r in caplog.records)
