"""`modelport audit` and `modelport audit verify` as a user runs them: a subprocess."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.registry import Actor


def test_audit_lists_filters_and_verifies(
    cli: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    assert cli("alias", "set", "iris", "production", "1").returncode == 0
    assert cli("stage", "iris", "1", "Production").returncode == 0

    entries = json.loads(cli("audit", "--json").stdout)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("model.register", "iris/1"),
        ("alias.set", "iris@production"),
        ("version.stage", "iris/1"),
    ]
    assert {e["actor"] for e in entries} == {Actor.local().name}
    filtered = cli("audit", "--action", "alias.set", "--since", "1h", "--json")
    assert [e["id"] for e in json.loads(filtered.stdout)] == [2]
    page = cli("audit", "--limit", "2")
    assert "alias.set" in page.stdout
    assert "more: --after-id 2" in page.stdout
    assert "version.stage" in cli("audit", "--after-id", "2").stdout
    bad = cli("audit", "--since", "yesterday")
    assert bad.returncode == 1
    assert "since must be an ISO 8601 time" in bad.stderr

    verified = cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "audit log ok: 3 entries" in verified.stdout

    database = settings.resolved_database_url.split("///", 1)[1]
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("""UPDATE audit_log SET after = '{"version": 2}' WHERE id = 2""")
    broken = cli("audit", "verify")
    assert broken.returncode == 1
    assert "error: Audit log integrity check failed: entry 2 was changed" in broken.stderr
    assert "next:" in broken.stderr
    report = json.loads(cli("audit", "verify", "--json").stdout)
    assert (report["ok"], report["broken_id"]) == (False, 2)
