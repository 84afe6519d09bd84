"""Each peer's service files, generated into a temp dir, and the Target that starts it.

Nothing peer-specific is committed: the FastAPI apps, the BentoML service, MLServer's settings
and the MLflow model directories are written here from the same fitted estimators the harness
builds (bench/models.py), pickled once by our venv. Every peer venv pins our scikit-learn
version, so each server loads exactly the trees and coefficients modelport serves.

Every server gets one OpenMP/BLAS thread (PERF-NOTES lesson 2: the library default of two
threads on two cores costs tree models up to 60% inside a server) and no access log, as
``modelport serve`` has none.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import joblib
import orjson

from models import BenchModel
from peers import Installed
from targets import ENDPOINTS, Endpoint, Target, free_port, modelport_target

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
BATCH = {"max_batch_size": 64, "max_batch_time_s": 0.005}  # MLServer, as in PERF-NOTES

V1, V2 = (next(e for e in ENDPOINTS if e.protocol == p) for p in ("v1", "v2"))
MLFLOW = Endpoint(
    "mlflow",
    lambda name: "/invocations",  # one model per MLflow server
    lambda rows: orjson.dumps({"dataframe_split": {"data": rows}}),
    lambda answer: list(answer["predictions"]),
)
BENTOML = Endpoint(
    "bentoml",
    lambda name: f"/{name}",
    lambda rows: orjson.dumps({"input": rows}),
    lambda answer: list(answer),
)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One server start: what runs, which models it serves, whether its answers are checked."""

    server: str
    target: Target
    models: tuple[str, ...]
    checked: bool = True  # False only for the constant floor, which answers a fixed body


def export_pickles(models: dict[str, BenchModel], folder: Path) -> dict[str, Path]:
    """joblib files of the fitted estimators: what FastAPI, BentoML and MLServer load."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, model in models.items():
        paths[name] = folder / f"{name}.joblib"
        joblib.dump(model.estimator, paths[name])
    return paths


def _env(venv: Installed, **extra: str) -> dict[str, str]:
    path = f"{venv.bin}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**ONE_THREAD, "VIRTUAL_ENV": str(venv.path), "PATH": path, **extra}


def _target(
    name: str,
    command: list[str],
    venv: Installed,
    cwd: Path,
    port: int,
    ready_path: str,
    endpoint: Endpoint,
    **env: str,
) -> Target:
    return Target(
        name,
        tuple(command),
        _env(venv, **env),
        cwd,
        "127.0.0.1",
        port,
        ready_path=ready_path,
        floor_path=ready_path,
        ready_timeout_s=180.0,
        failed_marker=None,
        endpoints=(endpoint,),
    )


# -- modelport -------------------------------------------------------------------------------


def modelport(
    work: Path, models: tuple[str, ...], endpoints: tuple[Endpoint, ...], working_tree: bool
) -> tuple[Deployment, str]:
    """``modelport serve`` on ``work/modelport-home``, and a line saying which code ran.

    Others commit to this checkout while a run goes on: when src/ has local changes, HEAD's
    src/ is exported and put first on PYTHONPATH, so the commit in the header is what ran.
    """
    root = Path(__file__).resolve().parent.parent
    head = _git(root, "rev-parse", "--short", "HEAD").decode().strip()
    target = modelport_target(work / "modelport-home", 0, models)
    target = replace(target, endpoints=endpoints)
    if not _git(root, "status", "--porcelain", "--", "src").strip():
        return Deployment("modelport", target, models), f"commit {head}"
    if working_tree:
        return Deployment("modelport", target, models), f"commit {head} + local changes in src/"
    target = _from_commit(root, "HEAD", target, work / "modelport-head")
    return (
        Deployment("modelport", target, models),
        f"commit {head} (HEAD's src/ exported: the working tree had local changes)",
    )


def modelport_at(
    work: Path, ref: str, models: tuple[str, ...], endpoints: tuple[Endpoint, ...]
) -> Deployment:
    """The same server at another commit (``--baseline``), on the same models: before/after
    a change, measured in one run. Its registry is its own, made by its own code: a newer
    schema would be one it cannot read."""
    root = Path(__file__).resolve().parent.parent
    home = work / f"modelport-home-{ref}"
    target = replace(
        modelport_target(home, 0, models), endpoints=endpoints, name=f"modelport@{ref}"
    )
    target = _from_commit(root, ref, target, work / f"modelport-{ref}")
    bench = Path(__file__).resolve().parent
    register_there = (
        f"import sys; sys.path.insert(0, {str(bench)!r}); from pathlib import Path; "
        f"from models import build_models, register; register(build_models(), Path({str(home)!r}))"
    )
    env = {**os.environ, "PYTHONPATH": target.env["PYTHONPATH"]}
    subprocess.run([sys.executable, "-c", register_there], env=env, check=True, cwd=work)
    return Deployment(f"modelport@{ref}", target, models)


def _from_commit(root: Path, ref: str, target: Target, folder: Path) -> Target:
    """``target`` running the src/ of commit ``ref`` (exported to ``folder``)."""
    with tarfile.open(fileobj=io.BytesIO(_git(root, "archive", ref, "src"))) as archive:
        archive.extractall(folder, filter="data")
    return replace(target, env={**target.env, "PYTHONPATH": str(folder / "src")})


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True).stdout


# -- FastAPI baselines ------------------------------------------------------------------------

_FASTAPI_HEAD = '''"""Generated by bench/peer_services.py: {why}"""
import json
import os

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {{"status": "ok"}}
'''

_FASTAPI_NAIVE = """
import joblib
import numpy as np

PATHS = json.loads(os.environ["BENCH_MODELS"])
MODELS = {{name: joblib.load(path) for name, path in PATHS.items()}}


@app.post("/v1/models/{{name}}:predict")
async def predict(name: str, request: Request) -> Response:
    model = MODELS[name]
    rows = np.asarray(orjson.loads(await request.body())["instances"], dtype=np.float64)
    labels = model.classes_[model.predict_proba(rows).argmax(axis=1)]
    return Response(orjson.dumps({{"predictions": labels.tolist()}}), media_type="application/json")
"""

_FASTAPI_CONSTANT = """
BODY = orjson.dumps({{"predictions": [0]}})


@app.post("/v1/models/{{name}}:predict")
async def predict(name: str) -> Response:
    return Response(BODY, media_type="application/json")
"""


MODELPORT_WORKERS = len(os.sched_getaffinity(0))
"""Worker processes modelport starts by default here (one per CPU it may use)."""


def fastapi(
    naive: bool, venv: Installed, pickles: dict[str, Path], work: Path, workers: int = 1
) -> Deployment:
    """Naive: predict_proba per request in the handler; otherwise a constant, the HTTP floor.

    The naive app is the lean version a careful user writes (orjson, no pydantic body, the
    predict inline on the event loop): a stronger baseline than the tutorial one.
    """
    name = "fastapi-naive" if naive else "fastapi-const" if workers == 1 else "fastapi-const-N"
    folder = work / name
    folder.mkdir()
    why = (
        "predict_proba per request, one worker"
        if naive
        else f"a fixed JSON answer, the HTTP floor, {workers} worker(s)"
    )
    (folder / "app.py").write_text(
        _FASTAPI_HEAD.format(why=why) + (_FASTAPI_NAIVE if naive else _FASTAPI_CONSTANT).format()
    )
    port = free_port()
    command = [
        str(venv.bin / "uvicorn"),
        "app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    models_json = json.dumps({name: str(path) for name, path in pickles.items()})
    target = _target(name, command, venv, folder, port, "/healthz", V1, BENCH_MODELS=models_json)
    return Deployment(name, target, tuple(pickles), checked=naive)


# -- MLflow -----------------------------------------------------------------------------------

_MLFLOW_SAVE = '''"""Generated by bench/peer_services.py: a joblib model saved by mlflow.sklearn."""
import sys

import joblib
import mlflow.sklearn
import skops.io

model = joblib.load(sys.argv[1])
# skops refuses classes it does not know (the tree internals of HistGradientBoosting); these
# are our own fitted estimators, so every type skops lists is trusted explicitly
trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
mlflow.sklearn.save_model(model, sys.argv[2], serialization_format="skops",
                          skops_trusted_types=trusted)
'''


def mlflow(venv: Installed, pickles: dict[str, Path], work: Path) -> list[Deployment]:
    """``mlflow models serve`` serves one model per process: one deployment per model."""
    folder = work / "mlflow"
    folder.mkdir()
    (folder / "save.py").write_text(_MLFLOW_SAVE)
    deployments = []
    for name, pickle in pickles.items():
        model_dir = folder / name
        subprocess.run(
            [str(venv.bin / "python"), "save.py", str(pickle), str(model_dir)],
            cwd=folder,
            check=True,
            capture_output=True,
            env=_env(venv),
        )
        port = free_port()
        command = [
            str(venv.bin / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        target = _target(
            f"mlflow-{name}",
            command,
            venv,
            folder,
            port,
            "/health",
            MLFLOW,
            MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
            UVICORN_ACCESS_LOG="false",
        )  # mlflow's uvicorn reads UVICORN_* env
        deployments.append(Deployment("mlflow", target, (name,)))
    return deployments


# -- BentoML ----------------------------------------------------------------------------------

_BENTO_HEAD = '''"""Generated by bench/peer_services.py: one batchable API per model."""
import bentoml
import joblib
import numpy as np


@bentoml.service(workers=1, logging={{"access": {{"enabled": False}}}})
class Models:
    def __init__(self) -> None:
'''
_BENTO_LOAD = "        self.model_{name} = joblib.load({path!r})\n"
_BENTO_API = """
    @bentoml.api(route="/{name}", batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict_{name}(self, input: np.ndarray) -> np.ndarray:
        return self.model_{name}.predict(input)
"""


def bentoml(venv: Installed, pickles: dict[str, Path], work: Path) -> Deployment:
    """Adaptive batching on (up to 64 rows; BentoML sizes its own wait within 1 s of SLA)."""
    folder = work / "bentoml"
    folder.mkdir()
    source = _BENTO_HEAD.format() + "".join(
        _BENTO_LOAD.format(name=n, path=str(p)) for n, p in pickles.items()
    )
    source += "".join(_BENTO_API.format(name=n) for n in pickles)
    (folder / "service.py").write_text(source)
    port = free_port()
    command = [
        str(venv.bin / "bentoml"),
        "serve",
        "service:Models",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(folder),
    ]
    target = _target(
        "bentoml",
        command,
        venv,
        folder,
        port,
        "/readyz",
        BENTOML,
        BENTOML_HOME=str(folder / "home"),
        BENTOML_DO_NOT_TRACK="true",
    )
    return Deployment("bentoml", target, tuple(pickles))


# -- MLServer ---------------------------------------------------------------------------------


def mlserver(batching: bool, venv: Installed, pickles: dict[str, Path], work: Path) -> Deployment:
    """A model repository folder: settings.json plus one model-settings.json per model.

    Its gRPC and metrics listeners get free ports too (they are always on); ``debug`` is off
    as in any deployment, since it logs every request.
    """
    name = "mlserver-batch" if batching else "mlserver-nobatch"
    folder = work / name
    port = free_port()
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
    }
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    for model, pickle in pickles.items():
        (folder / model).mkdir()
        model_settings: dict[str, object] = {
            "name": model,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(pickle)},
        }
        if batching:
            model_settings.update(
                max_batch_size=BATCH["max_batch_size"], max_batch_time=BATCH["max_batch_time_s"]
            )
        (folder / model / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    command = [str(venv.bin / "mlserver"), "start", str(folder)]
    target = _target(name, command, venv, folder, port, "/v2/health/ready", V2)
    return Deployment(name, target, tuple(pickles))
