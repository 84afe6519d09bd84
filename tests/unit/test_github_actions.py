"""The exported release workflow: valid for GitHub (its JSON schema, as vendored by
check-jsonschema), in the right order, and calling `modelport check` with options it has."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from modelport.cli.main import app
from modelport.cli.release import github_actions
from modelport.deploy.github_actions import WORKFLOW_PATH, WorkflowOptions, release_workflow
from modelport.errors import InvalidInputError

OPTIONS = WorkflowOptions(
    model="fraud", candidate="fraud@staging", data="data/holdout.csv", label="is fraud"
)


def test_the_workflow_validates_against_githubs_schema(tmp_path: Path) -> None:
    path = tmp_path / "modelport-release.yml"
    path.write_text(release_workflow(OPTIONS))
    checker = Path(sys.executable).with_name("check-jsonschema")
    command = str(checker) if checker.exists() else shutil.which("check-jsonschema")
    assert command, "check-jsonschema (dev extra) is not installed"
    done = subprocess.run(
        [command, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    broken = tmp_path / "broken.yml"
    broken.write_text(path.read_text().replace("runs-on:", "runs_on:"))
    refused = subprocess.run(
        [command, "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1  # the schema check itself can fail


def test_steps_gate_the_promotion_and_use_real_check_options() -> None:
    workflow = yaml.safe_load(release_workflow(OPTIONS))
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    steps = workflow["jobs"]["release"]["steps"]
    names = [step["name"] for step in steps]
    assert names == [
        "Check out",
        "Set up Python",
        "Install",
        "Tests",
        "Release gate",
        "Build the image",
        "Promote",
    ]
    gate = shlex.split(steps[names.index("Release gate")]["run"].splitlines()[0])
    assert gate[:5] == ["modelport", "check", "fraud@staging", "--against", "fraud@production"]
    assert gate[gate.index("--label") + 1] == "is fraud"
    check = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    known = {opt for param in check.params for opt in param.opts}
    used = {word for word in gate[: gate.index("|")] if word.startswith("--")}
    assert used <= known, used - known
    assert steps[-1]["run"] == (
        'modelport alias set fraud production "${{ steps.gate.outputs.version }}"'
    )
    assert "docker build" in steps[names.index("Build the image")]["run"]


def test_a_candidate_of_another_model_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not a version of 'fraud'"):
        release_workflow(
            WorkflowOptions(model="fraud", candidate="iris@staging", data="x.csv", label="y")
        )


def test_the_command_writes_under_the_repository(tmp_path: Path) -> None:
    command = typer.Typer()
    command.command()(github_actions)
    done = CliRunner().invoke(
        command, ["--model", "fraud", "--data", "h.csv", "--label", "y", "-o", str(tmp_path)]
    )
    assert done.exit_code == 0, done.output
    assert "fraud@staging" in (tmp_path / WORKFLOW_PATH).read_text()
