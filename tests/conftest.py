"""Shared fixtures: fresh settings per test, real PostgreSQL / S3 endpoints, fitted models.

Service-backed fixtures skip with a loud reason when the service is absent, and fail
instead when ``CI=true``: CI must never pass by skipping.

Two house rules are enforced here for every test: no test reads the developer's environment
(``MODELPORT_*`` cleared, the config file pointed at nothing), and no test leaves a listening
process behind (checked when each pytest process finishes; see ``tests/processes.py``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelport.config import Settings
from modelport.registry import Registry
from tests import processes
from tests.webhooks import Receiver

WORKER_EXIT_S = 10.0
"""How long the last check waits for a killed server's workers to stop on their own."""

POSTGRES_ADMIN_URL = os.environ.get(
    "MODELPORT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No ``MODELPORT_*`` variable of the developer's shell, no ``modelport.yaml`` of the
    working directory: settings come from what the test passes, and defaults."""
    for name in list(os.environ):
        if name.startswith("MODELPORT_"):
            monkeypatch.delenv(name)
    nothing = tmp_path_factory.getbasetemp() / "no-such-modelport.yaml"
    monkeypatch.setenv("MODELPORT_CONFIG", str(nothing))


@pytest.fixture(scope="session", autouse=True)
def no_listening_process_left_behind() -> Iterator[None]:
    """Fails this pytest process's last test if a process it started is still listening.

    Torn down after every other session fixture, so servers stopped by fixtures are gone.
    """
    processes.mark_this_process()
    yield
    leftovers = processes.still_listening_after(WORKER_EXIT_S)
    if leftovers:
        processes.stop(leftovers)
        pytest.fail(
            "tests left listening process(es) behind (now stopped): "
            + "; ".join(str(p) for p in leftovers),
            pytrace=False,
        )


def service_missing(reason: str) -> None:
    """Skip loudly, or fail under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required service unavailable under CI=true: {reason}")
    pytest.skip(f"SERVICE MISSING: {reason}")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings rooted in this test's own folder; keyword overrides win."""

    def factory(**overrides: Any) -> Settings:
        # one server process per test keeps the suite light; tests/e2e/test_workers.py
        # covers several
        values: dict[str, Any] = {"home": tmp_path / "home", "workers": 1}
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    reg = Registry.from_settings(settings)
    yield reg
    reg.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for this test, dropped afterwards."""
    if not port_open("127.0.0.1", 5432):
        service_missing("PostgreSQL on 127.0.0.1:5432")
    from sqlalchemy import create_engine, text

    name = f"mp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# -- fitted models, shared by the whole session (fitting is the slow part) -----------------


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def iris_data() -> tuple[np.ndarray, np.ndarray]:
    data = load_iris()
    return data.data, data.target


@pytest.fixture(scope="session")
def iris_logreg(iris_data: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    X, y = iris_data
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="session")
def iris_hgb(iris_data: tuple[np.ndarray, np.ndarray]) -> HistGradientBoostingClassifier:
    X, y = iris_data
    return HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)


@pytest.fixture(scope="session")
def tabular_data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=400, n_features=20, random_state=7)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 300).astype(np.int64),
            "income": rng.normal(50_000, 15_000, 300),
            "city": rng.choice(["paris", "lyon", "nice"], 300).astype(object),
            "member": rng.choice(["yes", "no"], 300).astype(object),
        }
    )
    target = ((frame["income"] > 50_000) ^ (frame["city"] == "nice")).astype(int).to_numpy()
    return frame, target


@pytest.fixture(scope="session")
def mixed_pipeline(mixed_frame: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    """A ColumnTransformer over named, mixed-type columns, as real projects ship them."""
    frame, target = mixed_frame
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "member"]),
        ]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=500))]).fit(
        frame, target
    )


# -- S3 on loopback and the two metadata backends ------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint on loopback for the session: moto in server mode, on a free port."""
    import logging
    import threading

    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_missing(f"moto[server] is not installed: {exc}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits forever if the server thread dies before listening; bound that wait.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout=20)
    try:
        host, port = server.get_host_and_port()
    except AssertionError:
        service_missing("moto S3 server did not start on 127.0.0.1")
    if starter.is_alive() or not port_open(host, port):
        service_missing(f"moto S3 server on {host}:{port} is not answering")
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> Settings:
    """Settings on the embedded SQLite file, or on a fresh database of the real PostgreSQL."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("postgres_url"))
    return make_settings()
