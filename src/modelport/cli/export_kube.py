"""`modelport export k8s | helm | kserve`: manifests that run `modelport serve` in a cluster.

Plain functions, registered on the `export` app by ``cli/main.py``; the generators live in
:mod:`modelport.deploy`, and this module only reads the options and writes the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.sessions import current_settings
from modelport.deploy import helm as helm_chart
from modelport.deploy import kserve as kserve_manifests
from modelport.deploy import kubernetes
from modelport.deploy.values import KubeOptions, chart_values

Models = Annotated[
    list[str],
    typer.Option(
        "--model", "-m", help="Model to serve: name@alias, name/3 or name (repeat for more)."
    ),
]
Image = Annotated[
    str | None, typer.Option(help="Image as REPOSITORY:TAG (default: modelport:VERSION).")
]
Name = Annotated[
    str | None, typer.Option(help="Name of every object (default: the first model's name).")
]
Namespace = Annotated[str | None, typer.Option(help="Namespace of every object.")]
Replicas = Annotated[int, typer.Option(min=1, help="Replicas (the autoscaler's minimum).")]
MaxReplicas = Annotated[int, typer.Option(min=1, help="Most replicas the autoscaler may run.")]
TargetCpu = Annotated[
    int, typer.Option(min=1, max=100, help="CPU use (% of the request) the autoscaler keeps.")
]
RequestsPerSecond = Annotated[
    float | None,
    typer.Option(
        min=0,
        help="Also scale on requests per second per pod (a Pods metric; needs prometheus-adapter).",
    ),
]
Cpu = Annotated[str, typer.Option(help="CPU requested per pod (e.g. 500m, 2).")]
Memory = Annotated[str, typer.Option(help="Memory requested and the limit per pod (e.g. 1Gi).")]
StartupSeconds = Annotated[
    int, typer.Option(min=5, help="How long loading the models may take before a restart.")
]
Port = Annotated[int, typer.Option(min=1, max=65535, help="HTTP port of the container.")]
GrpcPort = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Also serve gRPC (Open Inference V2) here.")
]
ServiceMonitor = Annotated[
    bool, typer.Option(help="Write a Prometheus Operator ServiceMonitor for /metrics.")
]


def k8s(
    models: Models,
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for one file per object (default: stdout)."),
    ] = None,
    image: Image = None,
    name: Name = None,
    namespace: Namespace = None,
    replicas: Replicas = 2,
    max_replicas: MaxReplicas = 10,
    target_cpu: TargetCpu = 70,
    requests_per_second: RequestsPerSecond = None,
    cpu: Cpu = "1",
    memory: Memory = "1Gi",
    startup_seconds: StartupSeconds = 120,
    port: Port = 8000,
    grpc_port: GrpcPort = None,
    service_monitor: ServiceMonitor = True,
) -> None:
    """Kubernetes manifests: Deployment, Service, HorizontalPodAutoscaler,
    PodDisruptionBudget, ConfigMap, ServiceMonitor, and a template of the Secret to create."""
    options = KubeOptions(
        models=tuple(models), image=image, name=name, namespace=namespace, replicas=replicas,
        max_replicas=max_replicas, target_cpu=target_cpu,
        requests_per_second=requests_per_second, cpu=cpu, memory=memory,
        startup_seconds=startup_seconds, port=port, grpc_port=grpc_port,
        service_monitor=service_monitor,
    )  # fmt: skip
    settings = current_settings()
    with output.reporting_errors():
        values = chart_values(options, settings)
    found = kubernetes.manifests(values, namespace)
    secret = kubernetes.secret_template(values, namespace)
    if out is None:  # the Secret template stays out: piped to kubectl it would apply
        typer.echo(kubernetes.stream(list(found.values())), nl=False)
        return
    files = {file: kubernetes.dump(manifest) for file, manifest in found.items()}
    files[kubernetes.SECRET_TEMPLATE_FILE] = kubernetes.dump(secret)
    output.write_files(out, files)


def helm(
    models: Models,
    out: Annotated[Path, typer.Option("--output", "-o", help="Folder of the chart.")],
    image: Image = None,
    name: Name = None,
    namespace: Namespace = None,
    replicas: Replicas = 2,
    max_replicas: MaxReplicas = 10,
    target_cpu: TargetCpu = 70,
    requests_per_second: RequestsPerSecond = None,
    cpu: Cpu = "1",
    memory: Memory = "1Gi",
    startup_seconds: StartupSeconds = 120,
    port: Port = 8000,
    grpc_port: GrpcPort = None,
    service_monitor: ServiceMonitor = True,
) -> None:
    """A Helm chart of the same objects as `export k8s`, every option a value; installed as
    release NAME with its defaults it creates what `export k8s` writes."""
    options = KubeOptions(
        models=tuple(models), image=image, name=name, namespace=namespace, replicas=replicas,
        max_replicas=max_replicas, target_cpu=target_cpu,
        requests_per_second=requests_per_second, cpu=cpu, memory=memory,
        startup_seconds=startup_seconds, port=port, grpc_port=grpc_port,
        service_monitor=service_monitor,
    )  # fmt: skip
    settings = current_settings()
    with output.reporting_errors():
        values = chart_values(options, settings)
    files = helm_chart.chart(values)
    secret = kubernetes.secret_template(values, namespace)
    files[kubernetes.SECRET_TEMPLATE_FILE] = kubernetes.dump(secret)
    output.write_files(out, files)


def kserve(
    models: Models,
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for one file per object (default: stdout)."),
    ] = None,
    image: Image = None,
    name: Name = None,
    namespace: Namespace = None,
    replicas: Replicas = 1,
    max_replicas: MaxReplicas = 10,
    cpu: Cpu = "1",
    memory: Memory = "1Gi",
) -> None:
    """KServe ServingRuntime running `modelport serve` (protocols v1 and v2, port 8080) and an
    InferenceService using it."""
    options = KubeOptions(
        models=tuple(models), image=image, name=name, namespace=namespace,
        replicas=replicas, max_replicas=max_replicas, cpu=cpu, memory=memory,
        service_monitor=False,
    )  # fmt: skip
    settings = current_settings()
    with output.reporting_errors():
        found = kserve_manifests.manifests(options, settings)
        values = chart_values(options, settings)
    if out is None:
        typer.echo(kubernetes.stream(list(found.values())), nl=False)
        return
    files = {file: kubernetes.dump(manifest) for file, manifest in found.items()}
    files[kubernetes.SECRET_TEMPLATE_FILE] = kubernetes.dump(
        kubernetes.secret_template(values, namespace)
    )
    output.write_files(out, files)
