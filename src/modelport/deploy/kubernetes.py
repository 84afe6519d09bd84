"""Plain Kubernetes manifests of one modelport server, from the chart values.

Deployment (probes on /readyz and /healthz, a startup probe as long as models take to load,
a grace period longer than the server's drain, non-root, read-only root file system),
Service, HorizontalPodAutoscaler, PodDisruptionBudget, ConfigMap, ServiceMonitor, and the
*template* of the Secret the user creates. Each function mirrors one template of the Helm
chart (:mod:`modelport.deploy.helm`) field for field; keep them in step (a test renders both).
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from modelport.deploy.values import METRICS_KEY, grace_seconds, number

APP = "modelport"
"""``app.kubernetes.io/name`` of every object (the chart's name)."""

Manifest = dict[str, Any]


def selector_labels(values: dict[str, Any]) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/instance": values["fullnameOverride"]}


def labels(values: dict[str, Any]) -> dict[str, str]:
    """The chart's labels less Helm's own (``helm.sh/chart``, ``managed-by``)."""
    return {**selector_labels(values), "app.kubernetes.io/version": values["image"]["tag"]}


def metadata(values: dict[str, Any], namespace: str | None, name: str | None = None) -> Manifest:
    meta: Manifest = {"name": name or values["fullnameOverride"]}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels(values)
    return meta


def config_map(values: dict[str, Any], namespace: str | None) -> Manifest:
    data = {
        "MODELPORT_HOME": values["homePath"],
        "MODELPORT_HOST": "0.0.0.0",  # the pod's own address; API keys are then required
        "MODELPORT_PORT": str(values["service"]["port"]),
    }
    if values["service"]["grpcPort"]:
        data["MODELPORT_GRPC_PORT"] = str(values["service"]["grpcPort"])
    data["MODELPORT_WORKERS"] = str(values["workers"])
    data["MODELPORT_DRAIN_TIMEOUT_S"] = number(values["drainTimeoutSeconds"])
    data.update(values["config"])
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(values, namespace),
        "data": data,
    }


CONFIG_CHECKSUM = "checksum/config"
"""A pod annotation that changes with the ConfigMap, so ``kubectl apply`` of a changed
ConfigMap rolls the pods (environment variables are read once, at a container's start)."""


def config_checksum(values: dict[str, Any], namespace: str | None) -> str:
    return hashlib.sha256(dump(config_map(values, namespace)).encode()).hexdigest()


def _ports(values: dict[str, Any]) -> list[Manifest]:
    ports = [{"name": "http", "containerPort": values["service"]["port"], "protocol": "TCP"}]
    if values["service"]["grpcPort"]:
        ports.append(
            {"name": "grpc", "containerPort": values["service"]["grpcPort"], "protocol": "TCP"}
        )
    return ports


def _secret_env(values: dict[str, Any]) -> list[Manifest]:
    env = []
    for item in values["secretEnv"]:
        ref: Manifest = {"name": values["existingSecret"], "key": item["key"]}
        if item["optional"]:
            ref["optional"] = True
        env.append({"name": item["name"], "valueFrom": {"secretKeyRef": ref}})
    return env


def _probe(path: str, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def container(values: dict[str, Any]) -> Manifest:
    image = values["image"]
    startup_failures = max(1, -(-values["startupSeconds"] // 5))
    return {
        "name": APP,
        "image": f"{image['repository']}:{image['tag']}",
        "imagePullPolicy": image["pullPolicy"],
        "command": ["modelport"],
        "args": ["serve", *values["models"]],
        "ports": _ports(values),
        "envFrom": [{"configMapRef": {"name": values["fullnameOverride"]}}],
        "env": _secret_env(values),
        "startupProbe": _probe("/readyz", 5, startup_failures),
        "readinessProbe": _probe("/readyz", 5, 2),
        "livenessProbe": _probe("/healthz", 10, 3),
        "lifecycle": {"preStop": {"sleep": {"seconds": values["preStopSleepSeconds"]}}},
        "resources": values["resources"],
        "securityContext": values["securityContext"],
        "volumeMounts": [
            {"name": "home", "mountPath": values["homePath"]},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def deployment(values: dict[str, Any], namespace: str | None) -> Manifest:
    spec: Manifest = {}
    if not values["autoscaling"]["enabled"]:
        spec["replicas"] = values["replicaCount"]  # else the autoscaler owns the count
    spec.update(
        {
            "revisionHistoryLimit": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": selector_labels(values)},
            "template": {
                "metadata": {
                    "annotations": {CONFIG_CHECKSUM: config_checksum(values, namespace)},
                    "labels": selector_labels(values),
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": grace_seconds(values),
                    "securityContext": values["podSecurityContext"],
                    "containers": [container(values)],
                    "volumes": [
                        {"name": "home", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(values, namespace),
        "spec": spec,
    }


def service(values: dict[str, Any], namespace: str | None) -> Manifest:
    ports = [{"name": "http", "port": values["service"]["port"], "targetPort": "http"}]
    if values["service"]["grpcPort"]:
        ports.append({"name": "grpc", "port": values["service"]["grpcPort"], "targetPort": "grpc"})
    for port in ports:
        port["protocol"] = "TCP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(values, namespace),
        "spec": {"type": "ClusterIP", "selector": selector_labels(values), "ports": ports},
    }


def autoscaler(values: dict[str, Any], namespace: str | None) -> Manifest:
    scaling = values["autoscaling"]
    metrics: list[Manifest] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {
                    "type": "Utilization",
                    "averageUtilization": scaling["targetCPUUtilizationPercentage"],
                },
            },
        }
    ]
    if scaling["requestsPerSecond"]:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": scaling["requestRateMetric"]},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": number(scaling["requestsPerSecond"]),
                    },
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(values, namespace),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": values["fullnameOverride"],
            },
            "minReplicas": values["replicaCount"],
            "maxReplicas": scaling["maxReplicas"],
            "metrics": metrics,
        },
    }


def disruption_budget(values: dict[str, Any], namespace: str | None) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(values, namespace),
        "spec": {
            "maxUnavailable": values["podDisruptionBudget"]["maxUnavailable"],
            "selector": {"matchLabels": selector_labels(values)},
        },
    }


def service_monitor(values: dict[str, Any], namespace: str | None) -> Manifest:
    """/metrics needs a key of scope `read` when keys are on: Prometheus sends one from the
    Secret."""
    monitor = values["serviceMonitor"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(values, namespace),
        "spec": {
            "selector": {"matchLabels": selector_labels(values)},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": monitor["interval"],
                    "authorization": {
                        "type": "Bearer",
                        "credentials": {
                            "name": values["existingSecret"],
                            "key": monitor["apiKeySecretKey"],
                        },
                    },
                }
            ],
        },
    }


def manifests(values: dict[str, Any], namespace: str | None) -> dict[str, Manifest]:
    """File name → manifest, in the order ``kubectl apply`` should meet them."""
    found = {
        "configmap.yaml": config_map(values, namespace),
        "deployment.yaml": deployment(values, namespace),
        "service.yaml": service(values, namespace),
    }
    if values["autoscaling"]["enabled"]:
        found["hpa.yaml"] = autoscaler(values, namespace)
    if values["podDisruptionBudget"]["enabled"]:
        found["pdb.yaml"] = disruption_budget(values, namespace)
    if values["serviceMonitor"]["enabled"]:
        found["servicemonitor.yaml"] = service_monitor(values, namespace)
    return found


PLACEHOLDERS = {
    "database-url": "<postgresql+psycopg://USER:PASSWORD@HOST:5432/modelport>",
    "auth-secret": "<32+ random characters, the same for every replica>",
    METRICS_KEY: "<an API key of scope read, for Prometheus to scrape /metrics>",
}


def secret_template(values: dict[str, Any], namespace: str | None) -> Manifest:
    """The Secret the user fills in and creates: placeholders only, never a value."""
    data = {}
    for item in values["secretEnv"]:
        if item["optional"]:
            data[item["key"]] = f"<optional: {item['name']}, or leave this key out>"
        else:
            data[item["key"]] = PLACEHOLDERS[item["key"]]
    if values["serviceMonitor"]["enabled"]:
        data[values["serviceMonitor"]["apiKeySecretKey"]] = PLACEHOLDERS[METRICS_KEY]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(values, namespace, values["existingSecret"]),
        "type": "Opaque",
        "stringData": data,
    }


SECRET_TEMPLATE_FILE = "secret.yaml.example"
"""Not ``*.yaml``: ``kubectl apply -f DIR`` must never overwrite the real Secret with it."""


def dump(manifest: Manifest) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, width=100)


def stream(documents: list[Manifest]) -> str:
    """One multi-document YAML stream."""
    return "---\n".join(dump(document) for document in documents)
