"""How the CLI shows things: rich tables for people, JSON for scripts, one error format.

Every failure ends as ``error: <title>: <detail>`` on stderr, a ``next:`` line saying what to
do about it, and exit code 1 (usage errors are click's, exit 2). Errors from outside modelport
that reach this boundary (a full disk, a read-only folder) are translated here, never shown as
a traceback.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from modelport.errors import (
    FieldError,
    InvalidInputError,
    ModelportError,
    StorageUnavailableError,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ResourceFormat = Annotated[
    str, typer.Option("--output", "-o", help="yaml (the spec, ready to edit and apply) or json.")
]

console = Console()
errors = Console(stderr=True)

_NEXT_STEPS = {
    "model_not_found": "list registered models with `modelport models`",
    "model_version_not_found": "list versions with `modelport versions NAME`",
    "alias_not_found": "see aliases with `modelport alias list NAME`",
    "untrusted_artifact": "register it with --trusted only if you created the file",
    "artifact_integrity_error": "the stored file changed; register the model again",
    "conversion_failed": "serve the version as it is; its own runtime still works",
    "configuration_error": "`modelport config show` prints the settings in use "
    "(`--describe` explains each)",
    "storage_unavailable": "check that the database of MODELPORT_DATABASE_URL is running and "
    "reachable (`modelport config show` prints the settings in use)",
}
_FULL = "free space on that disk, or point MODELPORT_HOME / MODELPORT_ARTIFACT_URI elsewhere"
_READ_ONLY = "make that folder writable, or set MODELPORT_HOME to a folder you can write"
_DISK_HINTS = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EFBIG: _FULL,
    errno.EROFS: _READ_ONLY,
    errno.EACCES: _READ_ONLY,
    errno.EPERM: _READ_ONLY,
}
_DISK_TROUBLE = (
    "check the disk that holds it: free space (it may be full) and write "
    "permission; or point MODELPORT_HOME elsewhere"
)
_SQLITE_HINTS = {
    "SQLITE_FULL": _FULL,
    "SQLITE_READONLY": _READ_ONLY,
    "SQLITE_CANTOPEN": _READ_ONLY,
    "SQLITE_IOERR": _DISK_TROUBLE,
}


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def emit_resource(document: dict[str, Any], everything: dict[str, Any], output_format: str) -> None:
    """A resource (deployment, experiment) as its YAML document, to edit and apply again, or
    everything about it as JSON."""
    if output_format == "json":
        emit_json(everything)
    elif output_format == "yaml":
        typer.echo(yaml.safe_dump(document, sort_keys=False), nl=False)
    else:
        fail(InvalidInputError(f"--output must be yaml or json, not {output_format!r}"))


def write_files(folder: Path, files: Mapping[str, str]) -> None:
    """Generated files (relative path → text) into ``folder``, each one named as written."""
    with reporting_errors():
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            console.print(f"wrote {path}", highlight=False)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column, overflow="fold")  # a narrow terminal wraps ids, never cuts them
    for row in rows:
        view.add_row(*("" if v is None else str(v) for v in row))
    console.print(view)


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s")


def rows_progress(*, quiet: bool, transient: bool = False) -> Progress:
    """A progress bar of rows done (of a total, when known) and rows per second, on stderr
    so stdout keeps only the result; ``quiet`` (``--json``) shows nothing."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        console=errors,
        transient=transient,
        disable=quiet,
    )


def warn(message: str) -> None:
    errors.print(
        f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True
    )


def fail(error: ModelportError, hint: str | None = None) -> NoReturn:
    errors.print(
        f"[red]error:[/red] {error.title}: {error.detail}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
    if len(error.errors) > 1:  # the detail names the first; a person fixes them all at once
        for field in error.errors:
            errors.print(f"  - {_located(field)}", markup=False, highlight=False, soft_wrap=True)
    hint = hint or _disk_hint(error) or _NEXT_STEPS.get(error.code)
    if hint:
        errors.print(f"next: {hint}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def reporting_errors(hints: Mapping[str, str] | None = None) -> Iterator[None]:
    """Every modelport error (and any OSError) ends the command with its message and exit 1.

    ``hints`` maps an error code to the next step this command suggests instead of the
    general one (``alias set`` knows about ``--force``, ``serve`` about ``--port``).
    """
    try:
        yield
    except ModelportError as exc:
        fail(exc, (hints or {}).get(exc.code))
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        error = StorageUnavailableError(f"{exc.strerror or exc}{where}")
        fail(error, _DISK_HINTS.get(exc.errno or 0, "check that path and its permissions"))


def _located(field: FieldError) -> str:
    """The message, led by its field unless it names it already (YAML errors carry
    ``file:line: path``)."""
    leaf = field.pointer.rsplit("/", 1)[-1]
    return field.message if leaf and leaf in field.message else f"{field.pointer}: {field.message}"


def _disk_hint(error: BaseException) -> str | None:
    """A next step for a disk that is full or read-only, found anywhere in the cause chain."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in _DISK_HINTS:
            return _DISK_HINTS[cause.errno]
        sqlite_error = getattr(cause, "orig", None) or cause
        name = str(getattr(sqlite_error, "sqlite_errorname", ""))  # SQLITE_IOERR_SHMSIZE
        hint = _SQLITE_HINTS.get(name) or _SQLITE_HINTS.get("_".join(name.split("_")[:2]))
        if hint:
            return hint
        cause = cause.__cause__
    return None
