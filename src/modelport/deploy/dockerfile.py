"""The container image: a two-stage Dockerfile that serves models with `modelport serve`.

The builder stage installs the pinned ``requirements.lock`` and the modelport wheel into a
venv; the runtime stage copies only that venv onto the same slim base, so no compiler, pip
cache or build context stays in the image. It runs as a non-root user, pins the BLAS/OpenMP
pools to one thread (modelport sizes its own model threads), answers its ``HEALTHCHECK``
from ``/healthz`` with Python's urllib (slim images have no curl), and starts with a plain
``modelport serve …`` whose argv is :func:`entrypoint` — the test runs that same list.

Without baking, the image reads its registry from ``MODELPORT_DATABASE_URL`` and
``MODELPORT_ARTIFACT_URI`` at start; with baking (:mod:`modelport.deploy.bake`) it carries an
SQLite registry of its own, verified against the manifest while the image is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelport.deploy.bake import REGISTRY
from modelport.deploy.pins import modelport_version
from modelport.errors import InvalidInputError
from modelport.registry import ModelAddress

DEFAULT_BASE = "python:3.11-slim-bookworm"
PORT = 8000
USER = "modelport"
UID = 10001
"""Numeric, so that Kubernetes' ``runAsNonRoot`` can check it without reading /etc/passwd."""
VENV = "/opt/venv"
HOME = "/var/lib/modelport"
"""``MODELPORT_HOME`` of an image that reads a remote registry (cache, auth secret)."""
BAKED = "/srv/modelport"
"""Where a baked folder lives in the image; its registry is ``BAKED/registry``."""
BAKE_CONTEXT = "bake"
"""The baked folder's name in the build context."""
LOCK = "requirements.lock"
_PINNED = re.compile(
    r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9][a-z0-9._/-]*"  # [registry[:port]/]repository
    r"(?::(?=[\w.-]*\d)[\w.-]+|@sha256:[0-9a-f]{64})$"  # a tag with a version in it, or a digest
)


@dataclass(frozen=True, slots=True)
class ImageOptions:
    models: tuple[str, ...] = ()
    """What `modelport serve` serves (``name@alias``…); none: every deployment."""
    bake: bool = False
    base: str = DEFAULT_BASE
    wheel: str = field(default_factory=lambda: wheel_name(modelport_version()))
    """The modelport wheel's file name in the build context."""

    def __post_init__(self) -> None:
        if not _PINNED.match(self.base):
            raise InvalidInputError(
                f"base image {self.base!r} is not pinned: name a version tag "
                f"({DEFAULT_BASE}) or a digest (python@sha256:…), never latest or no tag",
                pointer="/base",
            )
        names = [ModelAddress.parse(m).name for m in self.models]
        if len(set(names)) != len(names):
            raise InvalidInputError(
                f"a server serves each model once; got {', '.join(self.models)}",
                pointer="/model",
            )
        if self.bake and not self.models:
            raise InvalidInputError("--bake needs at least one --model to bake", pointer="/model")


def wheel_name(version: str) -> str:
    """What ``pip wheel`` names modelport's wheel (pure Python, any platform)."""
    return f"modelport-{version}-py3-none-any.whl"


def entrypoint(options: ImageOptions) -> list[str]:
    """The image's command: `modelport serve` with the models, binding and port from the
    environment (``MODELPORT_HOST``, ``MODELPORT_PORT``). The Dockerfile splits it into
    ``ENTRYPOINT ["modelport"]`` and ``CMD``, so that ``docker run IMAGE keys create …`` or a
    compose ``command: ["worker", …]`` runs another modelport command in the same image."""
    return ["modelport", "serve", *options.models]


def environment(options: ImageOptions) -> dict[str, str]:
    """The variables the image sets (the registry's location included when baked)."""
    values = {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MODELPORT_HOST": "0.0.0.0",
        "MODELPORT_PORT": str(PORT),
        "MODELPORT_HOME": f"{BAKED}/{REGISTRY}" if options.bake else HOME,
    }
    return values


def verify_command(folder: str = BAKED) -> list[str]:
    """The build step that checks a baked folder against its manifest."""
    return ["python", "-m", "modelport.deploy.bake", folder]


def probe(path: str) -> list[str]:
    """A health probe with the standard library only (slim images have no curl or wget):
    exit 1 unless ``path`` answers 2xx on the port the server listens on."""
    return [
        "python",
        "-c",
        "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + "
        f"os.environ.get('MODELPORT_PORT', '{PORT}') + '{path}', timeout=4)",
    ]


def dockerfile(options: ImageOptions) -> str:
    env = environment(options)
    env_lines = " \\\n    ".join(f"{k}={v}" for k, v in env.items())
    baked = ""
    if options.bake:
        baked = (
            f"# the registry baked by `modelport export dockerfile --bake`, checked against\n"
            f"# its manifest here: an artifact changed since the export fails the build\n"
            f"COPY --chown={UID}:{UID} {BAKE_CONTEXT}/ {BAKED}/\n"
            f"RUN {json.dumps(verify_command())}\n"
        )
    return f"""\
# syntax=docker/dockerfile:1
# Generated by `modelport export dockerfile`; regenerate rather than edit.
# Build context: this folder, with {options.wheel} in it
# (`pip wheel --no-deps --wheel-dir <this folder> <modelport checkout>`).

FROM {options.base} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv {VENV}
ENV PATH={VENV}/bin:$PATH
COPY {LOCK} /tmp/build/
RUN pip install --no-cache-dir -r /tmp/build/{LOCK}
COPY {options.wheel} /tmp/build/
RUN pip install --no-cache-dir --no-deps /tmp/build/{options.wheel}

FROM {options.base}
RUN groupadd --system --gid {UID} {USER} \\
    && useradd --system --uid {UID} --gid {UID} --home-dir {HOME} --shell /usr/sbin/nologin \\
        {USER} \\
    && mkdir -p {HOME} \\
    && chown {UID}:{UID} {HOME}
COPY --from=builder {VENV} {VENV}
ENV PATH={VENV}/bin:$PATH \\
    {env_lines}
WORKDIR {HOME}
USER {UID}:{UID}
{baked}EXPOSE {PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \\
    CMD {json.dumps(probe("/healthz"))}
ENTRYPOINT {json.dumps(entrypoint(options)[:1])}
CMD {json.dumps(entrypoint(options)[1:])}
"""


def dockerignore() -> str:
    """Only what the Dockerfile copies goes into the build context."""
    return "\n".join(
        [
            "# Generated by `modelport export dockerfile`: the context is the files the",
            "# Dockerfile copies, nothing else (no .env, no local registry, no VCS data).",
            "*",
            f"!{LOCK}",
            "!*.whl",
            f"!{BAKE_CONTEXT}/",
            f"{BAKE_CONTEXT}/{REGISTRY}/cache/",
            "",
        ]
    )


def context_files(options: ImageOptions, pins: Sequence[str]) -> dict[str, str]:
    """File name → text of the generated part of the build context."""
    lock = "\n".join(
        [
            "# Generated by `modelport export dockerfile` from the versions installed where it",
            "# ran (importlib.metadata): the image installs exactly these.",
            *pins,
            "",
        ]
    )
    return {"Dockerfile": dockerfile(options), ".dockerignore": dockerignore(), LOCK: lock}
