"""KServe manifests: a ``ServingRuntime`` that runs `modelport serve` and an
``InferenceService`` that uses it, so that a KServe cluster serves modelport's registry
without leaving KServe's objects, routing and autoscaling.

KServe's conventions for a custom runtime: the serving container is named
``kserve-container`` and listens on 8080, and the runtime declares the protocols it speaks
(modelport speaks both: KServe V1 and Open Inference Protocol V2) and the model formats it
loads. The models come from modelport's registry (database + artifact store, reached through
the same Secret as `export k8s`), so the InferenceService names no ``storageUri``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from modelport.config import Settings
from modelport.deploy.kubernetes import Manifest, metadata
from modelport.deploy.values import KubeOptions, chart_values, grace_seconds, number
from modelport.runtimes.base import ENTRY_POINT_GROUP

PORT = 8080
"""KServe's port for a runtime's HTTP server."""
FORMAT = "modelport"
"""The model format the InferenceService asks for: a model of modelport's registry."""


def flavor_names() -> list[str]:
    """Every flavor modelport ships (installed or not: the image decides what it loads)."""
    return [point.name for point in entry_points(group=ENTRY_POINT_GROUP)]


def supported_formats() -> list[Manifest]:
    formats: list[Manifest] = [{"name": FORMAT, "autoSelect": True, "priority": 1}]
    formats += [{"name": name, "autoSelect": False} for name in flavor_names()]
    return formats


def _container(values: dict[str, Any]) -> Manifest:
    image = values["image"]
    env: list[Manifest] = [
        {"name": "MODELPORT_HOME", "value": values["homePath"]},
        {"name": "MODELPORT_WORKERS", "value": str(values["workers"])},
        {"name": "MODELPORT_DRAIN_TIMEOUT_S", "value": number(values["drainTimeoutSeconds"])},
    ]
    env += [{"name": key, "value": value} for key, value in values["config"].items()]
    for item in values["secretEnv"]:
        ref: Manifest = {"name": values["existingSecret"], "key": item["key"]}
        if item["optional"]:
            ref["optional"] = True
        env.append({"name": item["name"], "valueFrom": {"secretKeyRef": ref}})
    probe: Manifest = {
        "httpGet": {"path": "/readyz", "port": PORT},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 2,
    }
    return {
        "name": "kserve-container",
        "image": f"{image['repository']}:{image['tag']}",
        "command": ["modelport"],
        "args": ["serve", *values["models"], "--host", "0.0.0.0", "--port", str(PORT)],
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": probe,
        "resources": values["resources"],
        "securityContext": {
            **values["securityContext"],
            "runAsNonRoot": True,
            "runAsUser": values["podSecurityContext"]["runAsUser"],
        },
        "volumeMounts": [
            {"name": "home", "mountPath": values["homePath"]},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def manifests(options: KubeOptions, settings: Settings) -> dict[str, Manifest]:
    """File name → manifest: the ServingRuntime, then the InferenceService that uses it."""
    values = chart_values(options, settings)
    name = values["fullnameOverride"]
    runtime_name = f"{name}-runtime"
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": metadata(values, options.namespace, runtime_name),
        "spec": {
            "annotations": {
                "prometheus.kserve.io/port": str(PORT),
                "prometheus.kserve.io/path": "/metrics",
            },
            "supportedModelFormats": supported_formats(),
            "protocolVersions": ["v1", "v2"],
            "containers": [_container(values)],
            "volumes": [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        },
    }
    service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(values, options.namespace, name),
        "spec": {
            "predictor": {
                "minReplicas": options.replicas,
                "maxReplicas": options.max_replicas,
                "terminationGracePeriodSeconds": grace_seconds(values),
                "model": {
                    "modelFormat": {"name": FORMAT},
                    "runtime": runtime_name,
                    "protocolVersion": "v2",
                },
            }
        },
    }
    return {"servingruntime.yaml": runtime, "inferenceservice.yaml": service}
