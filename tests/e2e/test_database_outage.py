"""The registry database drops every connection while a server runs: nothing is lost."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sqlalchemy import create_engine, text

import modelport
from modelport.registry import Registry
from tests.conftest import POSTGRES_ADMIN_URL
from tests.e2e.test_hot_swap import SteadyClient


def drop_connections(database: str) -> int:
    """What a PostgreSQL restart does to clients: every session of that database is killed."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar_one()
    admin.dispose()
    return int(killed)


def test_serving_survives_dropped_database_connections(
    live_server: Any,
    make_settings: Any,
    postgres_url: str,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = iris_data
    settings = make_settings(database_url=postgres_url, reload_interval_s=0.1)
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    constant = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    modelport.log_model(constant, "iris", X[:10], settings=settings)
    registry = Registry.from_settings(settings)
    registry.set_alias("iris", "production", 1)
    server = live_server(["iris@production"], settings)
    client = SteadyClient(f"{server.url}/v1/models/iris:predict", {"instances": X[:2].tolist()})
    client.start()
    database = postgres_url.rsplit("/", 1)[1]
    killed = 0
    for _ in range(5):
        time.sleep(0.3)
        killed += drop_connections(database)
    assert killed > 0, "the server held no connection to drop"
    registry.set_alias("iris", "production", 2)
    registry.close()
    deadline = time.monotonic() + 20
    while httpx.get(f"{server.url}/api/serving").json()["models"][0]["version"] != 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    client.stop.set()
    client.join()
    assert {status for status, _ in client.answers} == {200}
    assert len(client.answers) > 50
    listed = httpx.get(f"{server.url}/api/models/iris")
    assert listed.status_code == 200
    assert listed.json()["aliases"]["production"] == 2
