"""A GitHub Actions workflow that releases a model the way `modelport check` intends: on a
push to the main branch it installs the project, runs its tests, runs the release gate on
the candidate against production, builds the image, and only when all of that passed moves
the ``production`` alias to the candidate's version.

The registry is reached through ``MODELPORT_DATABASE_URL`` and ``MODELPORT_ARTIFACT_URI``,
read from the repository's secrets (a CI runner has no registry of its own). The gate's JSON
report is kept as a file and tells the promotion step which version passed, so the alias
moves to exactly the version that was checked even if the candidate alias moved meanwhile.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from modelport.errors import InvalidInputError
from modelport.registry.address import ModelAddress, check_name

WORKFLOW_PATH = ".github/workflows/modelport-release.yml"
SECRETS = ("MODELPORT_DATABASE_URL", "MODELPORT_ARTIFACT_URI")


@dataclass(frozen=True, slots=True)
class WorkflowOptions:
    model: str
    candidate: str
    """Address of the version to check and promote, e.g. ``fraud@staging``."""
    data: str
    """Hold-out file in the repository (CSV or Parquet)."""
    label: str
    branch: str = "main"
    python: str = "3.11"
    package: str = "modelport[postgres,s3,parquet]"
    test_command: str = "python -m pytest -q"
    image: str = ""
    """Image repository to build (default: the model's name)."""
    max_quality_drop: float = 0.01
    latency_budget_ms: float = 50.0


def release_workflow(options: WorkflowOptions) -> str:
    """The workflow file's text."""
    model = check_name(options.model)
    candidate = ModelAddress.parse(options.candidate)
    if candidate.name != model:
        raise InvalidInputError(
            f"the candidate {options.candidate!r} is not a version of {model!r}",
            pointer="/candidate",
        )
    if not options.label or not options.data:
        raise InvalidInputError("the gate needs a hold-out file and its label column")
    document: dict[str, Any] = {
        "name": f"modelport release: {model}",
        "on": {"push": {"branches": [options.branch]}},
        "permissions": {"contents": "read"},
        # one release of a model at a time: two would race for the alias
        "concurrency": {"group": f"modelport-release-{model}", "cancel-in-progress": False},
        "env": {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS},
        "jobs": {"release": {"runs-on": "ubuntu-latest", "steps": _steps(options, model)}},
    }
    header = (
        "# Written by `modelport export github-actions`. Set the repository secrets\n"
        f"# {' and '.join(SECRETS)} to the registry the models live in.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


class _Dumper(yaml.SafeDumper):
    """Multi-line scripts as literal blocks (``run: |``), as people write workflows."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _steps(options: WorkflowOptions, model: str) -> list[dict[str, Any]]:
    image = f"{options.image or model}:${{{{ github.sha }}}}"
    gate = shlex.join(
        [
            "modelport",
            "check",
            options.candidate,
            "--against",
            f"{model}@production",
            "--data",
            options.data,
            "--label",
            options.label,
            "--max-quality-drop",
            f"{options.max_quality_drop:g}",
            "--latency-budget-ms",
            f"{options.latency_budget_ms:g}",
            "--json",
        ]
    )
    version = (
        'python -c \'import json; print(json.load(open("gate.json"))["candidate"]["version"])\''
    )
    return [
        {"name": "Check out", "uses": "actions/checkout@v4"},
        {
            "name": "Set up Python",
            "uses": "actions/setup-python@v5",
            # no pip cache: setup-python fails when the repository has no requirements file
            "with": {"python-version": options.python},
        },
        {
            "name": "Install",
            "run": "python -m pip install --upgrade pip\n"
            f"pip install {shlex.quote(options.package)}\n"
            "if [ -f requirements.txt ]; then pip install -r requirements.txt; fi\n",
        },
        {"name": "Tests", "run": options.test_command},
        {
            "name": "Release gate",
            "id": "gate",
            # the default shell runs with -eo pipefail: a failed check stops the job here
            "run": f'{gate} | tee gate.json\necho "version=$({version})" >> "$GITHUB_OUTPUT"\n',
        },
        {"name": "Build the image", "run": f'docker build -t "{image}" .'},
        {
            "name": "Promote",
            "run": f"modelport alias set {model} production "
            '"${{ steps.gate.outputs.version }}"',
        },
    ]
