"""`modelport keys` against the local registry, and a real server that requires the keys."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import AuthMode, Settings

Cli = Callable[..., subprocess.CompletedProcess[str]]
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def test_keys_made_by_the_cli_open_a_server_that_requires_them(
    cli: Cli,
    live_server: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    created = cli("keys", "create", "--scope", "predict", "--models", "iris", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["scope"] == "predict"
    assert key["models"] == ["iris"]
    human = cli("keys", "create", "--scope", "read", "--name", "dashboards", "--expires", "90d")
    assert human.returncode == 0, human.stderr
    assert "mpk_" in human.stdout
    assert "shown only now" in human.stderr + human.stdout

    secured = settings.model_copy(update={"auth": AuthMode.REQUIRED})
    server = live_server(["iris"], secured)
    url = f"{server.url}/v1/models/iris:predict"
    assert httpx.post(url, json=ROW).status_code == 401
    answer = httpx.post(url, json=ROW, headers={"Authorization": f"Bearer {key['token']}"})
    assert answer.json() == {"predictions": [0]}

    listed = json.loads(cli("keys", "list", "--json").stdout)["keys"]
    assert {k["id"] for k in listed} >= {key["id"]}
    assert key["token"] not in json.dumps(listed)
    assert cli("keys", "revoke", key["id"]).returncode == 0
    assert key["id"] not in {
        k["id"] for k in json.loads(cli("keys", "list", "--json").stdout)["keys"]
    }
    revoked = httpx.post(url, json=ROW, headers={"X-API-Key": key["token"]})
    # the server re-reads the key table within auth_refresh_s (5 s by default)
    deadline = time.monotonic() + 15
    while revoked.status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
        revoked = httpx.post(url, json=ROW, headers={"X-API-Key": key["token"]})
    assert revoked.status_code == 401
    log = server.log()
    assert key["token"] not in log
    assert (settings.home / "auth-secret").read_text().strip() not in log


def test_bad_key_options_fail_with_a_message(cli: Cli) -> None:
    for args, expected in (
        (("--scope", "root"), "unknown scope"),
        (("--scope", "read", "--expires", "soon"), "not a duration"),
        (("--scope", "read", "--models", "bad name!"), "name"),
    ):
        result = cli("keys", "create", *args)
        assert result.returncode == 1, args
        assert expected in result.stderr, result.stderr
    assert cli("keys", "revoke", "0123456789ab").returncode == 1


def test_serving_beyond_loopback_without_keys_needs_insecure(cli: Cli, settings: Settings) -> None:
    exposed = settings.model_copy(update={"host": "0.0.0.0", "auth": AuthMode.OFF})
    refused = cli("serve", "iris", settings_override=exposed)
    assert refused.returncode == 1
    assert "authentication is off" in refused.stderr
    assert "--insecure" in refused.stderr
