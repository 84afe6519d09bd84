"""A Helm chart (apiVersion v2) of one modelport server: the manifests of `export k8s` as
templates, with every option as a value.

values.yaml is :func:`modelport.deploy.values.chart_values` with a comment on each key, so the
chart installed with its defaults (and the release named like ``--name``) creates exactly
what `export k8s` writes for the same options, plus Helm's two bookkeeping labels.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import yaml

from modelport.deploy.helm_templates import TEMPLATES

COMMENTS = {
    "nameOverride": "Replaces the chart name in `app.kubernetes.io/name`.",
    "fullnameOverride": "Name of every object (the release name when empty).",
    "image": "The modelport image; it must run as any non-root user.",
    "models": "Models the server hosts: name@alias follows the alias, name/3 is fixed.",
    "replicaCount": "Replicas (the autoscaler's minimum when autoscaling is on).",
    "workers": "Server processes per pod (MODELPORT_WORKERS): one per requested core.",
    "service": "HTTP port, and the gRPC port (null: HTTP only).",
    "resources": "No CPU limit: throttling a server adds latency; memory is bounded.",
    "startupSeconds": "How long models may take to load before the pod is restarted.",
    "drainTimeoutSeconds": "MODELPORT_DRAIN_TIMEOUT_S: in-flight requests get this long on "
    "SIGTERM; the grace period is this + preStopSleepSeconds + drainMarginSeconds.",
    "preStopSleepSeconds": "Pause before SIGTERM while endpoints forget the pod.",
    "drainMarginSeconds": "Grace period beyond the drain (shutdown, flushing the log).",
    "homePath": "MODELPORT_HOME, an emptyDir (the root file system is read-only).",
    "config": "Further non-secret MODELPORT_* settings for the ConfigMap (strings).",
    "existingSecret": "The Secret you create (docs/shipping-kubernetes.md); never in the chart.",
    "secretEnv": "Secret settings the pod reads from it by secretKeyRef.",
    "autoscaling": "HPA on CPU; requestsPerSecond adds a Pods metric (needs prometheus-adapter).",
    "podDisruptionBudget": "At most this many pods down at once in voluntary disruptions.",
    "serviceMonitor": "Prometheus Operator scrape of /metrics with a key of scope read.",
    "podSecurityContext": "Non-root pod.",
    "securityContext": "Read-only root, no privilege escalation, no capabilities.",
}


def values_yaml(values: dict[str, Any]) -> str:
    """values.yaml: each top-level key under a comment saying what it does."""
    parts = ["# Values of the modelport chart, as `modelport export helm` wrote them.\n"]
    for key, value in {"nameOverride": "", **values}.items():
        parts.append(f"\n# {COMMENTS[key]}\n")
        parts.append(yaml.safe_dump({key: value}, sort_keys=False, width=100))
    return "".join(parts)


def chart_yaml(values: dict[str, Any]) -> str:
    chart = {
        "apiVersion": "v2",
        "name": "modelport",
        "description": "A modelport server: " + ", ".join(values["models"]),
        "type": "application",
        "version": version("modelport"),
        "appVersion": str(values["image"]["tag"]),
    }
    return yaml.safe_dump(chart, sort_keys=False)


def chart(values: dict[str, Any]) -> dict[str, str]:
    """Path inside the chart folder → text."""
    return {
        "Chart.yaml": chart_yaml(values),
        "values.yaml": values_yaml(values),
        ".helmignore": "*.example\n.git/\n",
        **TEMPLATES,
    }
