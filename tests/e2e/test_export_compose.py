"""`modelport export compose`: a stack the Compose Specification accepts, wired with
healthchecks and dependency conditions, placeholders instead of secrets, and Prometheus and
Grafana files that load modelport's own alert rules and name only metrics it exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from modelport.config import Settings
from modelport.deploy.dockerfile import PORT
from modelport.deploy.grafana import dashboard
from modelport.monitoring.alerts import rules
from tests.unit.test_alert_rules import METRIC, exported_names

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def validate(compose_file: Path) -> subprocess.CompletedProcess[str]:
    """Against the Compose Specification schema check-jsonschema ships (no download)."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(compose_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def stack(cli: Any, tmp_path: Path) -> Path:
    out = tmp_path / "stack"
    result = cli(
        "export",
        "compose",
        "-m",
        "iris@production",
        "-m",
        "churn",
        "--extras",
        "s3",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    return out


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_compose_file_follows_the_compose_specification(stack: Path, tmp_path: Path) -> None:
    result = validate(stack / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    # and the schema check is not a formality: a misspelt condition fails it
    broken = load(stack / "compose.yaml")
    broken["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_up"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert validate(tmp_path / "broken.yaml").returncode != 0


def test_services_healthchecks_and_start_order(stack: Path) -> None:
    document = load(stack / "compose.yaml")
    services = document["services"]
    assert set(services) == {"modelport", "worker", "postgres", "redis", "prometheus", "grafana"}
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    probe = " ".join(services["modelport"]["healthcheck"]["test"])
    assert "/readyz" in probe
    for name in ("modelport", "worker"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        assert services[name]["build"] == {"context": "."}
        environment = services[name]["environment"]
        assert environment["MODELPORT_JOB_BROKER_URL"] == "redis://redis:6379/0"
        assert environment["MODELPORT_DATABASE_URL"].startswith(
            "postgresql+psycopg://modelport:${POSTGRES_PASSWORD:?"
        )
    assert services["modelport"]["command"] == ["serve", "iris@production", "churn"]
    assert services["worker"]["command"] == ["worker", "iris@production", "churn"]
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert "healthcheck" in services["prometheus"]
    named = {
        volume.split(":", 1)[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith(".")
    }
    assert named == set(document["volumes"])
    # what `build: .` builds: the image with the extras the stack uses, and those asked for
    lock = (stack / "requirements.lock").read_text()
    for extra in ("psycopg-binary==", "redis==", "celery==", "s3fs=="):
        assert f"\n{extra}" in lock
    assert 'ENTRYPOINT ["modelport"]' in (stack / "Dockerfile").read_text()
    assert not (stack / ".env").exists()


def test_an_image_replaces_the_build(cli: Any, tmp_path: Path) -> None:
    result = cli(
        "export", "compose", "-m", "iris", "--image", "registry.example/mp:1.2", "-o", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    services = load(tmp_path / "compose.yaml")["services"]
    assert (
        services["modelport"]["image"] == services["worker"]["image"] == "registry.example/mp:1.2"
    )
    assert "build" not in services["modelport"]
    assert not (tmp_path / "Dockerfile").exists()


def test_without_a_model_the_stack_is_refused(cli: Any) -> None:
    result = cli("export", "compose")
    assert result.returncode == 1
    assert "at least one --model" in result.stderr


def test_without_a_folder_compose_yaml_goes_to_stdout(cli: Any) -> None:
    result = cli("export", "compose", "-m", "iris")
    assert result.returncode == 0, result.stderr
    assert set(yaml.safe_load(result.stdout)["services"]) >= {"modelport", "worker"}


SECRET_LIKE = re.compile(r"[A-Za-z0-9+/_\-]{16,}|mpk_")
"""Long random-looking tokens and modelport keys: what a real secret looks like."""


def test_env_example_holds_placeholders_for_every_required_variable(stack: Path) -> None:
    values = {}
    for line in (stack / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            values[name] = value
    for name, value in values.items():
        assert value == "change-me", f"{name} should be a placeholder, not {value!r}"
        assert not SECRET_LIKE.search(value)
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (stack / "compose.yaml").read_text()))
    assert required == set(values)
    assert required >= {"POSTGRES_PASSWORD", "MODELPORT_AUTH_SECRET", "GRAFANA_ADMIN_PASSWORD"}


def test_prometheus_loads_the_alert_rules_and_scrapes_modelport(stack: Path) -> None:
    config = load(stack / "prometheus" / "prometheus.yml")
    [rule_file] = config["rule_files"]
    alerts = load(stack / "prometheus" / rule_file)
    assert alerts == rules()
    for group in alerts["groups"]:
        for rule in group["rules"]:
            promql_parser.parse(rule["expr"])
            assert set(METRIC.findall(rule["expr"])) <= exported_names(), rule["alert"]
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": [f"modelport:{PORT}"]}]
    assert job["authorization"]["credentials_file"].startswith("/etc/prometheus/")
    # the folder compose mounts at /etc/prometheus is the one holding these files
    services = load(stack / "compose.yaml")["services"]
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


def test_grafana_provisions_prometheus_and_loads_dashboards_from_the_folder(stack: Path) -> None:
    provisioning = stack / "grafana" / "provisioning"
    [source] = load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["url"] == "http://prometheus:9090"
    [provider] = load(provisioning / "dashboards" / "modelport.yml")["providers"]
    mounts = dict(
        v.split(":")[:2] for v in load(stack / "compose.yaml")["services"]["grafana"]["volumes"]
    )
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    written = json.loads((stack / "grafana" / "dashboards" / "modelport.json").read_text())
    assert written == dashboard()  # its queries are checked in tests/api/test_dashboards.py
    # the data source is a variable: provisioned as the default, Prometheus above fills it
    assert source["isDefault"] is True
    [variable] = [v for v in written["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == source["type"]


def interpolate(value: str, variables: dict[str, str]) -> str:
    """What compose makes of ``${NAME:?message}`` and ``${NAME:-default}``."""

    def replace(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in variables:
            return variables[name]
        assert kind == ":-", f"{name} is required and unset"
        return str(rest)

    return re.sub(r"\$\{([A-Z_]+)(:[?-])?([^}]*)\}", replace, value)


def test_every_modelport_variable_of_the_stack_is_a_setting_modelport_accepts(
    stack: Path,
) -> None:
    """A misspelt MODELPORT_* name would be ignored silently: each must name a setting, and
    the values (placeholders filled in) must parse."""
    services = load(stack / "compose.yaml")["services"]
    filled = {
        "POSTGRES_PASSWORD": "pw",
        "MODELPORT_AUTH_SECRET": "s" * 40,
        "GRAFANA_ADMIN_PASSWORD": "pw",
    }
    for name in ("modelport", "worker"):
        environment = {
            key: interpolate(value, filled) for key, value in services[name]["environment"].items()
        }
        fields = {key.removeprefix("MODELPORT_").lower() for key in environment}
        assert fields <= set(Settings.model_fields), fields - set(Settings.model_fields)
        settings = Settings(
            **{k.removeprefix("MODELPORT_").lower(): v for k, v in environment.items()}
        )
        assert settings.resolved_database_url == (
            "postgresql+psycopg://modelport:pw@postgres:5432/modelport"
        )
        assert settings.resolved_artifact_uri == "/var/lib/modelport/artifacts"
        assert settings.wait_for_models
        assert settings.workers == 2
