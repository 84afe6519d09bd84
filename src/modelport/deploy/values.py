"""The options of `export k8s` / `export helm`, checked, turned into one set of chart values.

Those values are the Helm chart's values.yaml and also the one source of the plain manifests
(:mod:`modelport.deploy.kubernetes`): both exports read the same mapping, so the chart rendered
with its defaults and `export k8s` cannot drift apart (a test renders the chart and compares).
Secret settings never become values: only the names of the Secret keys the pod reads.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from pydantic import SecretStr

from modelport.config import Settings
from modelport.deploy.dockerfile import HOME, PORT, UID
from modelport.errors import InvalidInputError

PRE_STOP_SECONDS = 5
"""Pause before SIGTERM so that endpoints drop the pod before it stops accepting requests."""
DRAIN_MARGIN_SECONDS = 10
"""Beyond the drain: interpreter shutdown, flushing the prediction log, closing the database."""
REQUEST_RATE_METRIC = "modelport_requests_per_second"
"""The Pods metric prometheus-adapter derives from ``modelport_requests_total``."""
REQUIRED_SECRETS = ("database_url", "auth_secret")
"""Secret settings every replica needs: one registry, one key hash secret for all."""
CLIENT_ONLY = {"api_key"}
"""Secret settings a server does not read (the SDK client's key)."""
NOT_COPIED = {
    "home",  # a folder of this machine; the pod has its own
    "host",
    "port",
    "grpc_port",
    "workers",
    "drain_timeout_s",  # set from the options and values below
    "models",  # the container's arguments
    "metrics_dir",  # internal: `serve` sets it
    "auth_secret_file",  # the secret comes by secretKeyRef
    "ssl_certfile",  # files of this machine; TLS ends at the ingress
    "ssl_keyfile",
}
METRICS_KEY = "metrics-api-key"
"""The Secret key holding an API key of scope `read`, which Prometheus scrapes /metrics with."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True, slots=True)
class KubeOptions:
    """What `modelport export k8s` and `export helm` take from the command line."""

    models: tuple[str, ...]
    image: str | None = None
    name: str | None = None
    namespace: str | None = None
    replicas: int = 2
    max_replicas: int = 10
    target_cpu: int = 70
    requests_per_second: float | None = None
    cpu: str = "1"
    memory: str = "1Gi"
    startup_seconds: int = 120
    port: int = PORT
    grpc_port: int | None = None
    service_monitor: bool = True


def default_image() -> str:
    return f"modelport:{version('modelport')}"


def resource_name(options: KubeOptions) -> str:
    """``--name``, else the first model's name made a DNS label (``fraud_v2@prod`` → fraud-v2)."""
    if options.name is not None:
        name = options.name
    else:
        if not options.models:
            raise InvalidInputError("name at least one model to serve (--model NAME@ALIAS)")
        first = re.split(r"[@/]", options.models[0])[0]
        name = re.sub(r"[^a-z0-9-]+", "-", first.lower()).strip("-")[:63].strip("-")
    if not _DNS_LABEL.match(name):
        raise InvalidInputError(
            f"{name!r} is not a Kubernetes name (lower-case letters, digits and '-', at most "
            "63, starting and ending alphanumeric); pass --name",
            pointer="/name",
        )
    return name


def split_image(image: str) -> tuple[str, str]:
    """``repo[:tag]`` → (repo, tag); the tag becomes a label value, so it must be one."""
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        repository, tag = image, "latest"
    if "@" in image or not _TAG.match(tag) or not repository:
        raise InvalidInputError(
            f"image {image!r}: give REPOSITORY:TAG (a tag of at most 63 letters, digits, "
            "'_', '.', '-'; digests are not supported)",
            pointer="/image",
        )
    return repository, tag


def check(options: KubeOptions) -> None:
    """Errors the user made, before anything is written."""
    if not options.models:
        raise InvalidInputError("name at least one model to serve (--model NAME@ALIAS)")
    for field, value in (("cpu", options.cpu), ("memory", options.memory)):
        if not _QUANTITY.match(value):
            raise InvalidInputError(
                f"--{field} {value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)",
                pointer=f"/{field}",
            )
    if options.max_replicas < options.replicas:
        raise InvalidInputError(
            f"--max-replicas {options.max_replicas} is below --replicas {options.replicas}",
            pointer="/max_replicas",
        )
    if options.grpc_port is not None and options.grpc_port == options.port:
        raise InvalidInputError("--grpc-port must differ from --port", pointer="/grpc_port")


def workers_for(cpu: str) -> int:
    """One server process per requested core (at least one): inside a container the CPU
    affinity shows the node's cores, not the quota, so the default would oversubscribe."""
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return max(1, math.ceil(cores))


def number(value: float) -> str:
    """A number as Go templates print it (30.0 → "30", 2.5 → "2.5")."""
    return f"{value:g}"


def secret_keys() -> list[tuple[str, str, bool]]:
    """(variable, Secret key, optional) of every secret setting a server reads."""
    keys = []
    for name, field in Settings.model_fields.items():
        if "SecretStr" in str(field.annotation) and name not in CLIENT_ONLY:
            optional = name not in REQUIRED_SECRETS
            keys.append((f"MODELPORT_{name.upper()}", name.replace("_", "-"), optional))
    return keys


def extra_config(settings: Settings) -> dict[str, str]:
    """Non-secret settings the user set (environment or modelport.yaml), for the ConfigMap;
    the server logs JSON lines in a cluster unless told otherwise."""
    config = {"MODELPORT_LOG_FORMAT": "json"}
    values = settings.model_dump(mode="json")
    for name in sorted(settings.model_fields_set - NOT_COPIED):
        if isinstance(getattr(settings, name), SecretStr) or values[name] is None:
            continue
        value = values[name]
        config[f"MODELPORT_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return config


def chart_values(options: KubeOptions, settings: Settings) -> dict[str, Any]:
    """The Helm chart's values.yaml, and the one source of every manifest below."""
    check(options)
    name = resource_name(options)
    repository, tag = split_image(options.image or default_image())
    return {
        "fullnameOverride": name,
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "models": list(options.models),
        "replicaCount": options.replicas,
        "workers": workers_for(options.cpu),
        "service": {"port": options.port, "grpcPort": options.grpc_port},
        "resources": {
            "requests": {"cpu": options.cpu, "memory": options.memory},
            "limits": {"memory": options.memory},
        },
        "startupSeconds": options.startup_seconds,
        "drainTimeoutSeconds": settings.drain_timeout_s,
        "preStopSleepSeconds": PRE_STOP_SECONDS,
        "drainMarginSeconds": DRAIN_MARGIN_SECONDS,
        "homePath": HOME,
        "config": extra_config(settings),
        "existingSecret": f"{name}-secrets",
        "secretEnv": [
            {"name": variable, "key": key, "optional": optional}
            for variable, key, optional in secret_keys()
        ],
        "autoscaling": {
            "enabled": True,
            "maxReplicas": options.max_replicas,
            "targetCPUUtilizationPercentage": options.target_cpu,
            "requestsPerSecond": options.requests_per_second,
            "requestRateMetric": REQUEST_RATE_METRIC,
        },
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "serviceMonitor": {
            "enabled": options.service_monitor,
            "interval": "30s",
            "apiKeySecretKey": METRICS_KEY,
        },
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def grace_seconds(values: dict[str, Any]) -> int:
    """SIGTERM comes after the preStop pause; the server then drains for its timeout."""
    return int(
        math.ceil(values["drainTimeoutSeconds"])
        + values["preStopSleepSeconds"]
        + values["drainMarginSeconds"]
    )
