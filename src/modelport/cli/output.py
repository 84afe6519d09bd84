"""How the CLI shows things: rich tables for people, JSON for scripts, one error format."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from modelport.errors import ModelportError

console = Console()
errors = Console(stderr=True)

_NEXT_STEPS = {
    "model_not_found": "list registered models with `modelport models`",
    "model_version_not_found": "list versions with `modelport versions NAME`",
    "alias_not_found": "see aliases with `modelport versions NAME`",
    "untrusted_artifact": "register it with --trusted only if you created the file",
    "artifact_integrity_error": "the stored file changed; register the model again",
    "conversion_failed": "serve the version as it is; its own runtime still works",
}


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if v is None else str(v) for v in row))
    console.print(view)


def fail(error: ModelportError) -> NoReturn:
    errors.print(f"[red]error:[/red] {error.title}: {error.detail}", markup=True,
                 highlight=False, soft_wrap=True)
    hint = _NEXT_STEPS.get(error.code)
    if hint:
        errors.print(f"next: {hint}", highlight=False)
    raise typer.Exit(1)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Every modelport error ends the command with its message and exit code 1."""
    try:
        yield
    except ModelportError as exc:
        fail(exc)
