"""`export k8s | helm | kserve`: the files validate against Kubernetes' own schemas, the chart
renders (with Helm's engine) to exactly the plain manifests, secrets never appear, and the
container's command really serves /readyz on the port its probes name."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python
import httpx
import kubernetes_validate
import numpy as np
import pytest
import typer
import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor as ServiceMonitorModel
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import modelport
from modelport.cli.export_kube import helm, k8s, kserve
from modelport.config import Settings
from modelport.deploy.kubernetes import CONFIG_CHECKSUM
from modelport.runtimes.base import ENTRY_POINT_GROUP
from tests.e2e.conftest import free_port

K8S_VERSION = kubernetes_validate.latest_version()
CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Secret",
}
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
OPTION_SETS = {
    "defaults": ["-m", "iris@production"],
    "everything": [
        "-m", "iris@production", "-m", "fraud/3", "--name", "scoring", "--namespace", "ml",
        "--image", "registry.example.com/ml/modelport:1.2.3", "--replicas", "3",
        "--max-replicas", "12", "--target-cpu", "60", "--requests-per-second", "40",
        "--cpu", "2500m", "--memory", "3Gi", "--startup-seconds", "301", "--grpc-port", "8001",
    ],
}  # fmt: skip


@pytest.fixture
def runner() -> Callable[..., Any]:
    """The three commands on a small app, as the lead engineer registers them on `export`."""
    app = typer.Typer()
    for command in (k8s, helm, kserve):
        app.command()(command)

    def run(*args: str, ok: bool = True) -> Any:
        result = CliRunner().invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def documents(folder: Path, pattern: str = "*.yaml") -> dict[str, dict[str, Any]]:
    """kind → object, from every file of ``folder`` matching ``pattern``."""
    found = {}
    for path in sorted(folder.glob(pattern)):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found[document["kind"]] = document
    return found


def validate_strictly(manifest: dict[str, Any]) -> None:
    """Against the Kubernetes schema of ``K8S_VERSION``; an unknown field is an error."""
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def as_pod(spec: dict[str, Any]) -> dict[str, Any]:
    """A pod of ``spec``'s containers and volumes: how KServe runs them, and how the core
    schema checks them."""
    pod_spec = {"containers": spec["containers"], "volumes": spec.get("volumes", [])}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": pod_spec}


def test_the_validator_rejects_unknown_fields() -> None:
    """Guards the tests below: a strict schema that let anything through would prove nothing."""
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dat": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_strictly(bad)


@pytest.mark.parametrize("option_set", OPTION_SETS)
def test_every_core_manifest_validates_against_the_kubernetes_schemas(
    runner: Callable[..., Any], tmp_path: Path, option_set: str
) -> None:
    runner("k8s", *OPTION_SETS[option_set], "-o", str(tmp_path))
    found = documents(tmp_path) | documents(tmp_path, "*.example")
    assert set(found) >= CORE_KINDS, sorted(found)
    for kind in CORE_KINDS:
        validate_strictly(found[kind])
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == [
        "configmap.yaml",
        "deployment.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "secret.yaml.example",
        "service.yaml",
        "servicemonitor.yaml",
    ]


def test_the_options_reach_the_manifests(runner: Callable[..., Any], tmp_path: Path) -> None:
    runner("k8s", *OPTION_SETS["everything"], "-o", str(tmp_path))
    found = documents(tmp_path)
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/ml/modelport:1.2.3"
    assert container["command"] == ["modelport"]
    assert container["args"] == ["serve", "iris@production", "fraud/3"]
    assert container["resources"]["requests"] == {"cpu": "2500m", "memory": "3Gi"}
    assert found["ConfigMap"]["data"]["MODELPORT_WORKERS"] == "3"  # one per requested core
    assert found["ConfigMap"]["data"]["MODELPORT_GRPC_PORT"] == "8001"
    assert {p["name"]: p["port"] for p in found["Service"]["spec"]["ports"]} == {
        "http": 8000,
        "grpc": 8001,
    }
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 301
    hpa = found["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    assert "replicas" not in found["Deployment"]["spec"]  # the autoscaler owns the count
    metrics = {metric["type"]: metric for metric in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["target"]["averageUtilization"] == 60
    assert metrics["Pods"]["pods"]["metric"]["name"] == "modelport_requests_per_second"
    assert metrics["Pods"]["pods"]["target"]["averageValue"] == "40"
    for document in found.values():
        assert document["metadata"]["namespace"] == "ml"
        assert document["metadata"]["name"] == "scoring"


def test_the_pod_runs_as_non_root_on_a_read_only_root(
    runner: Callable[..., Any], tmp_path: Path
) -> None:
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path))
    found = documents(tmp_path)
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    home = found["ConfigMap"]["data"]["MODELPORT_HOME"]
    mounted = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    assert mounted[home] in empty_dirs
    assert mounted["/tmp"] in empty_dirs


def test_probes_point_at_readyz_and_healthz(runner: Callable[..., Any], tmp_path: Path) -> None:
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path))
    (container,) = documents(tmp_path)["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    ports = {port["name"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports


def test_termination_grace_period_exceeds_the_drain_timeout(
    runner: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_DRAIN_TIMEOUT_S", "42.5")
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path))
    found = documents(tmp_path)
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert found["ConfigMap"]["data"]["MODELPORT_DRAIN_TIMEOUT_S"] == "42.5"
    # SIGTERM arrives after the preStop pause; the drain must still fit in what is left
    assert pod["terminationGracePeriodSeconds"] - pre_stop > 42.5


SECRET_URL = "postgresql+psycopg://modelport:hunter2-not-for-manifests@db:5432/modelport"
SECRET_KEY = "s3cr3t-" + "x" * 40


def test_no_secret_value_reaches_any_file(
    runner: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secret settings set in the environment stay there: the pod gets them by reference."""
    monkeypatch.setenv("MODELPORT_DATABASE_URL", SECRET_URL)
    monkeypatch.setenv("MODELPORT_AUTH_SECRET", SECRET_KEY)
    monkeypatch.setenv("MODELPORT_CACHE_URL", "redis://:hunter2-cache@redis:6379/0")
    monkeypatch.setenv("MODELPORT_ARTIFACT_URI", "s3://models/prod")
    for command in ("k8s", "helm", "kserve"):
        runner(command, "-m", "iris@production", "-o", str(tmp_path / command))
    texts = {path: path.read_text() for path in tmp_path.rglob("*") if path.is_file()}
    assert len(texts) > 15
    for path, text in texts.items():
        assert "hunter2" not in text, path
        assert SECRET_KEY not in text, path
    found = documents(tmp_path / "k8s") | documents(tmp_path / "k8s", "*.example")
    assert found["ConfigMap"]["data"]["MODELPORT_ARTIFACT_URI"] == "s3://models/prod"
    secret = found["Secret"]
    assert "data" not in secret
    assert set(secret["stringData"]) >= {"database-url", "auth-secret", "metrics-api-key"}
    for value in secret["stringData"].values():  # placeholders only
        assert value.startswith("<")
        assert value.endswith(">")
    (container,) = found["Deployment"]["spec"]["template"]["spec"]["containers"]
    by_name = {item["name"]: item for item in container["env"]}
    for variable in ("MODELPORT_DATABASE_URL", "MODELPORT_AUTH_SECRET", "MODELPORT_CACHE_URL"):
        assert "value" not in by_name[variable]
        assert by_name[variable]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert not {key for key in found["ConfigMap"]["data"] if key in by_name}


def test_stdout_is_one_stream_without_the_secret_template(runner: Callable[..., Any]) -> None:
    result = runner("k8s", "-m", "iris@production")
    kinds = [document["kind"] for document in yaml.safe_load_all(result.stdout)]
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ]


def check_service_monitor(document: dict[str, Any]) -> None:
    """Against prometheus-operator's CRD, as the models generated from its OpenAPI schema read
    it: a field the CRD does not know is dropped on the way through, so the copy differs."""
    parsed = ServiceMonitorModel.model_validate(document)
    assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == document


def test_the_service_monitor_check_rejects_a_misspelt_field() -> None:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "pth": "/metrics"}]},
    }
    with pytest.raises(AssertionError):
        check_service_monitor(monitor)


# Fields of KServe 0.21's ServingRuntime and InferenceService (no package the project can
# install ships their CRD schemas): the keys written must be among these, and the required
# ones present. Containers and volumes are core objects: validated as a pod.
CRD_FIELDS: dict[str, dict[str, Any]] = {
    "ServingRuntime": {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "spec": {"required": {"containers"}, "allowed": {"affinity", "annotations",
                 "builtInAdapter", "containers", "disabled", "grpcDataEndpoint", "grpcEndpoint",
                 "hostIPC", "httpDataEndpoint", "imagePullSecrets", "labels", "multiModel",
                 "nodeSelector", "protocolVersions", "replicas", "resourceClaims",
                 "schedulerName", "storageHelper", "supportedModelFormats", "tolerations",
                 "volumes", "workerSpec"}},
        "format": {"autoSelect", "name", "priority", "version"},
    },
    "InferenceService": {
        "apiVersion": "serving.kserve.io/v1beta1",
        "spec": {"required": {"predictor"}, "allowed": {"canary", "explainer", "predictor",
                 "tracing", "transformer"}},
        "predictor": {"minReplicas", "maxReplicas", "terminationGracePeriodSeconds", "model",
                      "containers", "volumes", "scaleMetric", "scaleTarget", "timeout"},
        "model": {"required": {"modelFormat"}, "allowed": {"modelFormat", "runtime",
                  "protocolVersion", "storageUri", "args", "env", "resources", "runtimeVersion"}},
    },
}  # fmt: skip


def check_crd_object(document: dict[str, Any]) -> None:
    fields = CRD_FIELDS[document["kind"]]
    assert document["apiVersion"] == fields["apiVersion"]
    assert set(document) == {"apiVersion", "kind", "metadata", "spec"}
    assert document["metadata"]["name"]
    spec = document["spec"]
    assert fields["spec"]["required"] <= set(spec) <= fields["spec"]["allowed"], set(spec)
    if document["kind"] == "ServingRuntime":
        for model_format in spec["supportedModelFormats"]:
            assert set(model_format) <= fields["format"]
            assert "priority" not in model_format or model_format["autoSelect"]
        validate_strictly(as_pod(spec))
    else:
        predictor = spec["predictor"]
        assert set(predictor) <= fields["predictor"], set(predictor)
        model = predictor["model"]
        assert fields["model"]["required"] <= set(model) <= fields["model"]["allowed"]
        assert set(model["modelFormat"]) <= {"name", "version"}


def test_the_structure_check_rejects_a_misspelt_field() -> None:
    service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "x"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "x"}, "runtim": "y"}}},
    }
    with pytest.raises(AssertionError):
        check_crd_object(service)


def test_the_service_monitor_scrapes_metrics_with_a_read_key(
    runner: Callable[..., Any], tmp_path: Path
) -> None:
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path))
    found = documents(tmp_path)
    monitor = found["ServiceMonitor"]
    check_service_monitor(monitor)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in found["Service"]["spec"]["ports"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        found["Service"]["metadata"]["labels"].items()
    )
    runner("k8s", "-m", "iris@production", "--no-service-monitor", "-o", str(tmp_path / "no"))
    assert "ServiceMonitor" not in documents(tmp_path / "no")


def test_kserve_runtime_and_inference_service(runner: Callable[..., Any], tmp_path: Path) -> None:
    runner("kserve", "-m", "iris@production", "--namespace", "ml", "-o", str(tmp_path))
    found = documents(tmp_path)
    assert set(found) == {"ServingRuntime", "InferenceService"}
    for document in found.values():
        check_crd_object(document)
    runtime, service = found["ServingRuntime"], found["InferenceService"]
    assert runtime["spec"]["protocolVersions"] == ["v1", "v2"]
    formats = {item["name"] for item in runtime["spec"]["supportedModelFormats"]}
    from importlib.metadata import entry_points

    assert {point.name for point in entry_points(group=ENTRY_POINT_GROUP)} < formats
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["command"] == ["modelport"]
    assert container["args"][:2] == ["serve", "iris@production"]
    assert container["args"][container["args"].index("--port") + 1] == "8080"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in formats
    assert all("value" not in item for item in container["env"] if "SECRET" in item["name"])


@pytest.mark.parametrize("option_set", OPTION_SETS)
def test_the_chart_renders_to_exactly_the_k8s_manifests(
    runner: Callable[..., Any],
    tmp_path: Path,
    option_set: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Helm's own engine (the Go SDK, through helm-python-sdk) renders the chart; settings
    with quotes, JSON and fractions go through values.yaml and Go's quoting unchanged."""
    monkeypatch.setenv("MODELPORT_MODEL_OPTIONS", '{"iris": {"cache": true, "rate_limit": "5/s"}}')
    monkeypatch.setenv("MODELPORT_CORS_ORIGINS", '["https://app.example.com"]')
    monkeypatch.setenv("MODELPORT_DRAIN_TIMEOUT_S", "2.5")
    monkeypatch.setenv("MODELPORT_PUBLIC_URL", "https://models.example.com/a b'c\\d")
    options = OPTION_SETS[option_set]
    runner("k8s", *options, "-o", str(tmp_path / "k8s"))
    runner("helm", *options, "-o", str(tmp_path / "chart"))
    expected = documents(tmp_path / "k8s")
    namespace = expected["Deployment"]["metadata"].get("namespace", "default")
    if "namespace" not in expected["Deployment"]["metadata"]:
        for document in expected.values():
            document["metadata"]["namespace"] = namespace
    release = expected["Deployment"]["metadata"]["name"]

    report = helm_python.lint(tmp_path / "chart", strict=True, kube_version=f"v{K8S_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems, problems
    assert not report["errors"], report["errors"]

    with helm_python.Chart.load(tmp_path / "chart") as chart:
        assert chart.metadata["apiVersion"] == "v2"
        rendered = chart.render(name=release, namespace=namespace)
    assert "modelport/templates/NOTES.txt" in rendered
    assert "kubectl" in rendered["modelport/templates/NOTES.txt"]
    got = {}
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            for document in yaml.safe_load_all(text):
                if document:
                    got[document["kind"]] = document
    for document in got.values():
        if document["kind"] in CORE_KINDS:
            validate_strictly(document)
        elif document["kind"] == "ServiceMonitor":
            check_service_monitor(document)
        labels = document["metadata"]["labels"]
        assert labels.pop("helm.sh/chart").startswith("modelport-")
        assert labels.pop("app.kubernetes.io/managed-by") == "Helm"
    checksums = [pod_checksum(found) for found in (got, expected)]
    assert all(len(checksum) == 64 for checksum in checksums)  # each hashes its own text
    assert got == expected
    data = got["ConfigMap"]["data"]
    assert data["MODELPORT_DRAIN_TIMEOUT_S"] == "2.5"
    assert data["MODELPORT_PUBLIC_URL"] == "https://models.example.com/a b'c\\d"
    assert data["MODELPORT_MODEL_OPTIONS"].startswith('{"iris"')


def pod_checksum(found: dict[str, Any]) -> str:
    """The pod template's ConfigMap checksum, taken out of the Deployment."""
    annotations = found["Deployment"]["spec"]["template"]["metadata"].pop("annotations")
    checksum: str = annotations.pop(CONFIG_CHECKSUM)
    assert not annotations
    return checksum


def test_a_changed_config_map_changes_the_pod_template(
    runner: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pods read the ConfigMap once, at start: a change must roll them, with `kubectl apply`
    as with `helm upgrade`."""
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path / "before"))
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path / "again"))
    monkeypatch.setenv("MODELPORT_DRAIN_TIMEOUT_S", "7.5")
    runner("k8s", "-m", "iris@production", "-o", str(tmp_path / "after"))
    before, again, after = (
        pod_checksum(documents(tmp_path / name)) for name in ("before", "again", "after")
    )
    assert before == again != after

    runner("helm", "-m", "iris@production", "-o", str(tmp_path / "chart"))
    with helm_python.Chart.load(tmp_path / "chart") as chart:
        rendered = [
            chart.render(values, name="iris", namespace="ml")
            for values in ({}, {}, {"config": {"MODELPORT_LOG_LEVEL": "debug"}})
        ]
    helm_before, helm_again, helm_after = (
        pod_checksum({"Deployment": yaml.safe_load(r["modelport/templates/deployment.yaml"])})
        for r in rendered
    )
    assert helm_before == helm_again != helm_after


def test_chart_values_change_what_renders(runner: Callable[..., Any], tmp_path: Path) -> None:
    """The values are really read by the templates, not baked into them."""
    runner("helm", "-m", "iris@production", "-o", str(tmp_path))
    values = {
        "replicaCount": 4,
        "autoscaling": {"enabled": False},
        "serviceMonitor": {"enabled": False},
        "drainTimeoutSeconds": 100,
    }
    with helm_python.Chart.load(tmp_path) as chart:
        rendered = chart.render(values, name="iris", namespace="ml")
    got = {}
    for path, text in rendered.items():
        for document in yaml.safe_load_all(text) if path.endswith(".yaml") else ():
            if document:
                got[document["kind"]] = document
    assert "HorizontalPodAutoscaler" not in got
    assert "ServiceMonitor" not in got
    assert got["Deployment"]["spec"]["replicas"] == 4
    pod = got["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 100
    assert got["ConfigMap"]["data"]["MODELPORT_DRAIN_TIMEOUT_S"] == "100"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cpu", "lots"], "not a Kubernetes quantity"),
        (["--replicas", "5", "--max-replicas", "2"], "below --replicas"),
        (["--name", "Not_A_Name"], "not a Kubernetes name"),
        (["--image", "repo@sha256:abc"], "REPOSITORY:TAG"),
        (["--grpc-port", "8000"], "must differ"),
    ],
)
def test_bad_options_are_reported_not_written(
    runner: Callable[..., Any], tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner("k8s", "-m", "iris@production", *args, "-o", str(tmp_path / "out"), ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def registered(settings: Settings, cli: Callable[..., Any]) -> Settings:
    """A temp registry with iris version 1 under the alias production."""
    data = np.random.default_rng(0).normal(size=(60, 4))
    model = LogisticRegression().fit(data, (data[:, 0] > 0).astype(int))
    modelport.log_model(model, "iris", data[:5], settings=settings)
    assert cli("alias", "set", "iris", "production", "1").returncode == 0
    return settings


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_container_command_answers_readyz_on_the_probe_port(
    runner: Callable[..., Any],
    tmp_path: Path,
    registered: Settings,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """The Deployment's command and ConfigMap, run here as the pod would run them; only the
    home (the pod's emptyDir is not on this machine) and the bind address (tests send nothing
    beyond loopback) are changed, and the Secret's keys are given as the pod would get them."""
    port = free_port()
    runner("k8s", "-m", "iris@production", "--port", str(port), "-o", str(tmp_path / "k8s"))
    found = documents(tmp_path / "k8s")
    (container,) = found["Deployment"]["spec"]["template"]["spec"]["containers"]
    secret_values = {
        "database-url": registered.resolved_database_url,
        "auth-secret": secrets.token_hex(32),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    env["MODELPORT_CONFIG"] = str(tmp_path / "no-such-modelport.yaml")
    env.update(found["ConfigMap"]["data"])
    for item in container["env"]:
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["key"] in secret_values:
            env[item["name"]] = secret_values[ref["key"]]
        else:
            assert ref.get("optional") is True, item  # a key the pod cannot start without
    env["MODELPORT_HOME"] = str(registered.home)
    env["MODELPORT_HOST"] = "127.0.0.1"
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    executable = shutil.which(container["command"][0], path=env["PATH"])
    assert executable is not None
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [executable, *container["command"][1:], *container["args"]],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started.append(process)
    probe = container["readinessProbe"]["httpGet"]
    ports = {item["name"]: item["containerPort"] for item in container["ports"]}
    url = f"http://127.0.0.1:{ports[probe['port']]}{probe['path']}"
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status = httpx.get(url, timeout=1).status_code
        except httpx.TransportError:
            status = None
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200, (tmp_path / "server.log").read_text()
    liveness = container["livenessProbe"]["httpGet"]
    assert httpx.get(f"http://127.0.0.1:{ports[liveness['port']]}{liveness['path']}").is_success
    # Kubernetes' SIGTERM: the server drains and exits within the grace period
    grace = found["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=grace) in (0, -15)  # uvicorn re-raises SIGTERM when done
    log.close()


def test_values_yaml_is_the_source_of_the_chart(runner: Callable[..., Any], tmp_path: Path) -> None:
    runner("helm", *OPTION_SETS["everything"], "-o", str(tmp_path))
    values = yaml.safe_load((tmp_path / "values.yaml").read_text())
    assert values["models"] == ["iris@production", "fraud/3"]
    assert values["service"] == {"port": 8000, "grpcPort": 8001}
    assert values["autoscaling"]["requestsPerSecond"] == 40
    chart = yaml.safe_load((tmp_path / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["appVersion"]) == ("v2", "modelport", "1.2.3")
    template = (tmp_path / "templates" / "deployment.yaml").read_text()
    assert 'include "modelport.fullname"' in template
    assert (tmp_path / "templates" / "_helpers.tpl").exists()
