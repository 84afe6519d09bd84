"""`modelport quickstart`: train two demo versions, alias them, print requests, serve."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from modelport.cli import output
from modelport.cli.sessions import current_settings
from modelport.config import Settings
from modelport.errors import NotFoundError
from modelport.registry import Registry, prepare_object

DEMO = "iris"


def quickstart(
    serve_demo: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Serve iris@production afterwards (--no-serve: only "
            "register, and print the command that serves it).",
        ),
    ] = True,
) -> None:
    """Train and register a demo classifier (two versions), then serve iris@production."""
    from modelport.cli.server import check_port, run_server

    settings = current_settings()
    with output.reporting_errors(
        {"conflict": "stop the other server, or set MODELPORT_PORT to a free port"}
    ):
        if serve_demo:
            check_port(settings.host, settings.port)  # before training, not after
        prepare_demo(settings, output.console)
        if not serve_demo:
            output.console.print(
                f"serve it with: {shell_command()} serve {DEMO}@production",
                highlight=False,
                soft_wrap=True,
            )
            return
        print_examples(settings, output.console)
        run_server(settings, [f"{DEMO}@production"])


def shell_command() -> str:
    """How to type this very `modelport` in the user's shell, venv activated or not."""
    script = Path(sys.prefix) / "bin" / "modelport"
    found = shutil.which("modelport")
    if found and script.exists() and Path(found).resolve() == script.resolve():
        return "modelport"
    if not script.exists():
        return f"{_shown(Path(sys.executable))} -m modelport"
    return _shown(script)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it (``.venv/bin/...``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def prepare_demo(settings: Settings, console: Console) -> None:
    """Register v1 (logistic regression) and v2 (gradient boosting) unless already there."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    registry = Registry.from_settings(settings)
    try:
        try:
            model = registry.get_model(DEMO)
            if "production" in model.aliases:
                console.print(
                    f"demo model {DEMO!r} already registered "
                    f"(production -> v{model.aliases['production']})"
                )
                return
        except NotFoundError:
            pass
        data = load_iris(as_frame=True)
        features = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        labels = pd.Series(data.target_names[data.target])
        X_train, X_test, y_train, y_test = train_test_split(
            features, labels, test_size=0.3, random_state=42, stratify=labels
        )
        candidates = [
            ("logistic regression", LogisticRegression(max_iter=1000)),
            ("gradient boosting", HistGradientBoostingClassifier(random_state=0)),
        ]
        versions = []
        for description, estimator in candidates:
            estimator.fit(X_train, y_train)
            accuracy = float(estimator.score(X_test, y_test))
            with (
                console.status(f"registering {description}"),
                prepare_object(
                    estimator, X_train.head(20), name=DEMO, scratch=registry.scratch_dir
                ) as prepared,
            ):
                record = registry.register(
                    DEMO,
                    prepared,
                    description=description,
                    metrics={"accuracy": accuracy},
                    params=estimator.get_params(),
                    tags={"dataset": "iris"},
                )
            versions.append(record.version)
            console.print(f"registered {record.address}: {description}, accuracy {accuracy:.3f}")
        registry.set_alias(DEMO, "production", versions[0])
        registry.set_alias(DEMO, "staging", versions[1])
        console.print(f"aliases: production -> v{versions[0]}, staging -> v{versions[1]}")
    finally:
        registry.close()


def print_examples(settings: Settings, console: Console) -> None:
    url = f"http://{settings.host}:{settings.port}"
    command = shell_command()
    activate = ""
    if command.endswith(f"{os.sep}modelport"):  # a venv's script: say how to activate it
        activate = (
            f"  (or activate the environment first: source {Path(command).parent / 'activate'})\n"
        )
    row = "[5.1, 3.5, 1.4, 0.2]"
    console.print(
        f"""
[bold]Serving {DEMO}@production at {url}[/bold]  (docs: {url}/docs)

KServe V1:
  curl -s {url}/v1/models/{DEMO}:predict -d '{{"instances": [{row}]}}'
  curl -s '{url}/v1/models/{DEMO}:predict?output=probabilities' -d '{{"instances": [{row}]}}'
Open Inference Protocol V2:
  curl -s {url}/v2/models/{DEMO}/infer -d '{{"inputs": [{{"name": "input", "shape": [1, 4], \
"datatype": "FP64", "data": {row}}}]}}'
MLflow scoring protocol:
  curl -s {url}/invocations -H 'Content-Type: application/json' \\
       -d '{{"dataframe_split": {{"columns": ["sepal_length", "sepal_width", \
"petal_length", "petal_width"], "data": [{row}]}}}}'
Promote v2 while serving (the server switches without dropping a request):
  {command} alias set {DEMO} production 2
{activate}Metrics: curl -s {url}/metrics
""",
        highlight=False,
        soft_wrap=True,
    )  # wrapped lines would break copy-paste
