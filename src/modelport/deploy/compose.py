"""A compose stack: modelport on PostgreSQL and Redis, a Celery worker, Prometheus, Grafana.

Everything a team needs to run modelport on one host, wired the way production is: the
registry in PostgreSQL, artifacts on a named volume shared by the server and the worker (or
S3, by setting ``MODELPORT_ARTIFACT_URI``), jobs through Redis to ``modelport worker``,
metrics scraped by Prometheus with modelport's own alert rules, a Grafana provisioned with
that Prometheus. Secrets come from ``.env`` (``.env.example`` shows the names, with
placeholders); services wait for their dependencies' healthchecks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from modelport.deploy.dockerfile import HOME, PORT, probe
from modelport.deploy.grafana import dashboard
from modelport.errors import InvalidInputError
from modelport.monitoring.alerts import rules

# Pinned: a stack that pulls `latest` changes under its users. Tested with these majors.
POSTGRES_IMAGE = "postgres:16.4-bookworm"
REDIS_IMAGE = "redis:7.4.1-bookworm"
PROMETHEUS_IMAGE = "prom/prometheus:v2.55.1"
GRAFANA_IMAGE = "grafana/grafana:11.3.0"
DATASOURCE_UID = "prometheus"
READ_KEY_FILE = "modelport-read-key"
"""In ``prometheus/``: a `read` key Prometheus sends to /metrics (keys are on in the stack)."""
EXTRAS = ("celery", "postgres", "redis")
"""What the image needs for this stack."""

_REQUIRED = "${{{name}:?set {name} in .env}}"


@dataclass(frozen=True, slots=True)
class StackOptions:
    models: tuple[str, ...]
    """Served by `modelport serve`, and whose jobs the worker runs."""
    image: str | None = None
    """An image to run; none: build the Dockerfile beside compose.yaml."""

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidInputError(
                "the stack needs at least one --model: the worker runs jobs of named models",
                pointer="/model",
            )


def compose(options: StackOptions) -> dict[str, Any]:
    """The compose file (Compose Specification) as plain data."""
    app = {"image": options.image} if options.image else {"build": {"context": "."}}
    return {
        "name": "modelport",
        "services": {
            "modelport": {
                **app,
                "command": ["serve", *options.models],
                "environment": _modelport_environment(),
                "ports": [f"{PORT}:{PORT}"],
                "volumes": [f"modelport-home:{HOME}"],
                "depends_on": _healthy("postgres", "redis"),
                # ready = every model loaded; the image's own HEALTHCHECK only asks liveness
                "healthcheck": _check(probe("/readyz"), start="120s"),
                "restart": "unless-stopped",
            },
            "worker": {
                **app,
                "command": ["worker", *options.models],
                "environment": _modelport_environment(),
                "volumes": [f"modelport-home:{HOME}"],
                "depends_on": _healthy("postgres", "redis"),
                # a worker serves no HTTP: the image's /healthz check does not apply
                "healthcheck": {"disable": True},
                "restart": "unless-stopped",
            },
            "postgres": {
                "image": POSTGRES_IMAGE,
                "environment": {
                    "POSTGRES_USER": "modelport",
                    "POSTGRES_DB": "modelport",
                    "POSTGRES_PASSWORD": _REQUIRED.format(name="POSTGRES_PASSWORD"),
                },
                "volumes": ["postgres-data:/var/lib/postgresql/data"],
                "healthcheck": _check(["pg_isready", "-U", "modelport", "-d", "modelport"]),
                "restart": "unless-stopped",
            },
            "redis": {
                "image": REDIS_IMAGE,
                "volumes": ["redis-data:/data"],
                "healthcheck": _check(["redis-cli", "ping"]),
                "restart": "unless-stopped",
            },
            "prometheus": {
                "image": PROMETHEUS_IMAGE,
                "volumes": ["./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
                "ports": ["9090:9090"],
                "depends_on": {"modelport": {"condition": "service_started"}},
                # busybox wget: the image has no curl
                "healthcheck": _check(
                    ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"]
                ),
                "restart": "unless-stopped",
            },
            "grafana": {
                "image": GRAFANA_IMAGE,
                "environment": {
                    "GF_SECURITY_ADMIN_PASSWORD": _REQUIRED.format(name="GRAFANA_ADMIN_PASSWORD"),
                },
                "volumes": [
                    "./grafana/provisioning:/etc/grafana/provisioning:ro",
                    "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
                    "grafana-data:/var/lib/grafana",
                ],
                "ports": ["3000:3000"],
                "depends_on": _healthy("prometheus"),
                "restart": "unless-stopped",
            },
        },
        "volumes": {
            name: {}
            for name in (
                "modelport-home",
                "postgres-data",
                "redis-data",
                "prometheus-data",
                "grafana-data",
            )
        },
    }


def _modelport_environment() -> dict[str, str]:
    """What the server and the worker share: the registry, the broker, the key secret."""
    password = _REQUIRED.format(name="POSTGRES_PASSWORD")
    return {
        "MODELPORT_DATABASE_URL": (
            f"postgresql+psycopg://modelport:{password}@postgres:5432/modelport"
        ),
        "MODELPORT_ARTIFACT_URI": "${MODELPORT_ARTIFACT_URI:-" + HOME + "/artifacts}",
        "MODELPORT_JOB_BROKER_URL": "redis://redis:6379/0",
        "MODELPORT_RATE_LIMIT_URL": "redis://redis:6379/1",
        # API keys are hashed under it: the server and the worker must agree
        "MODELPORT_AUTH_SECRET": _REQUIRED.format(name="MODELPORT_AUTH_SECRET"),
        # a container's CPU quota is not its affinity: say how many processes fit
        "MODELPORT_WORKERS": "${MODELPORT_WORKERS:-2}",
        # start before the models are registered; /readyz answers 503 until they load
        "MODELPORT_WAIT_FOR_MODELS": "true",
    }


def _healthy(*services: str) -> dict[str, dict[str, str]]:
    return {s: {"condition": "service_healthy"} for s in services}


def _check(test: list[str], *, start: str = "10s") -> dict[str, Any]:
    return {
        "test": ["CMD", *test],
        "interval": "10s",
        "timeout": "5s",
        "retries": 5,
        "start_period": start,
    }


def env_example() -> str:
    """The variables compose.yaml reads from ``.env``, with placeholders, never values."""
    return "\n".join(
        [
            "# Copy to .env and replace every placeholder; never commit .env.",
            "# Letters and digits only: the password is also part of a database URL.",
            "POSTGRES_PASSWORD=change-me",
            "# 32+ random characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)",
            "MODELPORT_AUTH_SECRET=change-me",
            "GRAFANA_ADMIN_PASSWORD=change-me",
            "# Optional: artifacts on S3 instead of the shared volume (add AWS_* credentials",
            "# to the modelport and worker services' environment).",
            "# MODELPORT_ARTIFACT_URI=s3://bucket/prefix",
            "# MODELPORT_WORKERS=2",
            "",
        ]
    )


def prometheus_config() -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {
                "job_name": "modelport",
                "metrics_path": "/metrics",
                # /metrics needs a `read` key once the server listens beyond loopback
                "authorization": {
                    "type": "Bearer",
                    "credentials_file": f"/etc/prometheus/{READ_KEY_FILE}",
                },
                "static_configs": [{"targets": [f"modelport:{PORT}"]}],
            }
        ],
    }


def grafana_datasource() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": "http://prometheus:9090",
                "isDefault": True,
            }
        ],
    }


def grafana_dashboards_provider() -> dict[str, Any]:
    """Loads every dashboard JSON in ``grafana/dashboards`` (``modelport.json`` among them)."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "modelport",
                "folder": "modelport",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "options": {"path": "/var/lib/grafana/dashboards"},
            }
        ],
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two services twice, not as a YAML anchor and alias (valid,
    but a reader of the file should see each service whole)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def stack_files(options: StackOptions) -> dict[str, str]:
    """Relative path → text of every file of the stack but the image's build context."""

    def dump(data: dict[str, Any]) -> str:
        return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, width=100)

    return {
        "compose.yaml": "# Generated by `modelport export compose`; see docs/shipping.md.\n"
        + dump(compose(options)),
        ".env.example": env_example(),
        "prometheus/prometheus.yml": dump(prometheus_config()),
        "prometheus/alerts.yml": dump(rules()),
        "grafana/provisioning/datasources/prometheus.yml": dump(grafana_datasource()),
        "grafana/provisioning/dashboards/modelport.yml": dump(grafana_dashboards_provider()),
        "grafana/dashboards/modelport.json": json.dumps(dashboard(), indent=2) + "\n",
    }
