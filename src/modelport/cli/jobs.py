"""`modelport jobs`: asynchronous predictions on a running server, submitted now and read later.

A job takes any body the predict routes take, sent as the file holds it: the server tells the
protocol from the body (or ``--format``) and checks it against the model before accepting.
Waiting shows the rows done on stderr, so stdout keeps only the answer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelport.cli import output
from modelport.cli.batch import (
    ChunkRowsOption,
    FormatOption,
    OutputFormat,
    OutputsOption,
    PassthroughOption,
    names,
)
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings
from modelport.errors import InvalidInputError, JobCancelledError, RequestTimeoutError
from modelport.jobs.formats import JobFormat
from modelport.jobs.model import JobState

if TYPE_CHECKING:
    from modelport.client import Client

app = typer.Typer(no_args_is_help=True, help="Asynchronous prediction jobs on a running server.")

_MEDIA_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
}
_INPUT_HELP = (
    "A predict body: .json (V1, V2 or MLflow JSON), .csv or .parquet (MLflow), sent as it is; "
    "- reads stdin (JSON when it starts with {, else CSV)."
)
_INPUT_HINT = (
    "send a body the model's predict routes take, from a .json, .csv or .parquet file "
    "(or - for stdin); `modelport jobs submit -h` says more"
)
_WAIT_HINT = "the job goes on: `modelport jobs wait {id}` waits again"

UrlOption = Annotated[
    str | None,
    typer.Option(help="The server (default: http://HOST:PORT of MODELPORT_HOST/PORT)."),
]
JobId = Annotated[str, typer.Argument(help="The job's id, as submit printed it.")]
TimeoutOption = Annotated[
    float | None,
    typer.Option(help="Give up waiting after this many seconds (the job goes on).", min=0),
]


@app.command()
def submit(
    model: Annotated[str, typer.Argument(help="name, name/3 or name@alias")],
    input: Annotated[str, typer.Option("--input", "-i", help=_INPUT_HELP)],
    format: Annotated[
        JobFormat | None,
        typer.Option(help="The body's protocol (default: told from the body)."),
    ] = None,
    output_name: Annotated[
        str | None,
        typer.Option("--output", help="Output to answer with, e.g. probabilities (V1, MLflow)."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the answer and print it.")] = False,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue a prediction of any size; prints the job, or with --wait its answer."""
    hints = {"invalid_input": _INPUT_HINT, "malformed_request": _INPUT_HINT}
    with _client(url, hints) as client:
        body, media_type = _body(input)
        job = client.submit_job(
            model,
            body,
            content_type=media_type,
            format=None if format is None else format.value,
            output=output_name,
        )
        _queued(client, job, wait, timeout, as_json)


@app.command("batch")
def batch_job(
    model: Annotated[str, typer.Argument(help="name or name@alias, as the server serves it")],
    input: Annotated[
        str, typer.Option("--input", "-i", help="A file or folder the server can read.")
    ],
    output_folder: Annotated[
        str, typer.Option("--output", "-o", help="A folder the server may write.")
    ],
    passthrough: PassthroughOption = "",
    outputs: OutputsOption = "",
    format: FormatOption = OutputFormat.PARQUET,
    chunk_rows: ChunkRowsOption = 1024,
    overwrite: Annotated[
        bool, typer.Option(help="Replace another run's files in the folder.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run's summary.")] = False,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue a batch run on the server (its files inside MODELPORT_BATCH_ROOTS); unlike
    `modelport batch`, the server's workers score it."""
    hints = {"forbidden": "the server reads and writes only inside MODELPORT_BATCH_ROOTS"}
    with _client(url, hints) as client:
        job = client.submit_batch_job(
            model,
            input,
            output_folder,
            passthrough=list(names(passthrough)),
            outputs=list(names(outputs)),
            format=format.value,
            chunk_rows=chunk_rows,
            overwrite=overwrite,
        )
        _queued(client, job, wait, timeout, as_json)


@app.command()
def status(job_id: JobId, url: UrlOption = None, as_json: JsonFlag = False) -> None:
    """Show a job's state, progress and error."""
    with _client(url, _about(job_id)) as client:
        job = client.job(job_id)
    if as_json:
        output.emit_json(job)
        return
    _table(f"Job {job_id}", [job])
    if job["error"]:
        output.console.print(
            f"{job['state']}: {job['error'].get('title')}: {job['error'].get('detail')}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("wait")
def wait_command(
    job_id: JobId, timeout: TimeoutOption = None, url: UrlOption = None, as_json: JsonFlag = False
) -> None:
    """Wait for a job and print its answer (the whole job with --json); exit 1 if it failed."""
    with _client(url, _about(job_id)) as client:
        _waited(client, job_id, timeout, as_json)


@app.command()
def result(
    job_id: JobId,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the answer here, not to stdout.")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Print (or write) the answer of a job that succeeded, byte for byte."""
    with _client(url, _about(job_id)) as client:
        answer = client.job_result(job_id)
        if out is not None:
            out.write_bytes(answer)
    if out is None:
        sys.stdout.buffer.write(answer)
        sys.stdout.buffer.flush()
        return
    output.console.print(f"wrote {out} ({len(answer):,} bytes)", highlight=False)


@app.command()
def cancel(job_id: JobId, url: UrlOption = None, as_json: JsonFlag = False) -> None:
    """Cancel a job: a queued one at once, a running one at its next piece."""
    with _client(url, _about(job_id)) as client:
        job = client.cancel_job(job_id)
    if as_json:
        output.emit_json(job)
        return
    stops = "" if job["state"] == JobState.CANCELLED else "; it stops at its next piece"
    output.console.print(f"job {job_id} {job['state']}{stops}", highlight=False)


@app.command("list")
def list_jobs(
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only jobs for this model (or deployment) name.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 100,
    url: UrlOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    with _client(url) as client:
        jobs = client.jobs(None if state is None else state.value, model, limit)
    if as_json:
        output.emit_json({"jobs": jobs})
        return
    _table("Jobs", jobs)


@contextmanager
def _client(url: str | None, hints: Mapping[str, str] | None = None) -> Iterator[Client]:
    """A client of ``url`` or of this machine's settings; its errors end the command, with
    ``hints`` as next steps by error code."""
    from modelport.client import Client  # httpx only for the commands that talk to a server

    if url is None:
        settings = current_settings()
        url = f"http://{settings.host}:{settings.port}"
    unreachable = f"check that a modelport server answers at {url} (--url)"
    with (
        output.reporting_errors({"internal_error": unreachable, **(hints or {})}),
        Client(url) as client,
    ):
        yield client


def _about(job_id: str) -> dict[str, str]:
    """Next steps when a command about one job is refused."""
    return {
        "job_not_found": "`modelport jobs list` shows the jobs there are (finished ones expire)",
        "conflict": f"`modelport jobs status {job_id}` shows the job",
    }


def _body(source: str) -> tuple[bytes, str]:
    """The bytes to send and their media type, told by the file's suffix or stdin's start."""
    if source == "-":
        payload = sys.stdin.buffer.read()
        json_like = payload.lstrip().startswith(b"{")
        return payload, _MEDIA_TYPES[".json" if json_like else ".csv"]
    file = Path(source)
    media_type = _MEDIA_TYPES.get(file.suffix.lower())
    if media_type is None:
        raise InvalidInputError(
            f"{source}: a job's input is a {', '.join(_MEDIA_TYPES)} file or - for stdin",
            pointer="/input",
        )
    if not file.is_file():
        raise InvalidInputError(f"input file {source} does not exist", pointer="/input")
    return file.read_bytes(), media_type


def _queued(
    client: Client, job: dict[str, Any], wait: bool, timeout: float | None, as_json: bool
) -> None:
    """A job just submitted: waited for (then its answer printed), or shown."""
    if wait:
        _waited(client, job["id"], timeout, as_json)
    elif as_json:
        output.emit_json(job)
    else:
        batch = job["kind"] == "batch"
        output.console.print(
            f"{'batch job' if batch else 'job'} {job['id']} {job['state']} for {job['model']}; "
            f"`modelport jobs wait {job['id']}` prints its {'summary' if batch else 'answer'}",
            highlight=False,
            soft_wrap=True,
        )


def _waited(client: Client, job_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for the job (a progress bar on stderr unless --json), then print its answer, or
    fail with its error."""
    from modelport.client import problem_error

    try:
        with _progress(quiet=as_json) as shown:
            job = client.wait_job(job_id, timeout, on_progress=shown)
    except RequestTimeoutError as exc:
        output.fail(exc, _WAIT_HINT.format(id=job_id))
    if job["state"] != JobState.SUCCEEDED:
        problem = job["error"]
        error = (
            JobCancelledError(f"job {job_id} was cancelled")
            if problem is None
            else problem_error(problem)
        )
        output.fail(error, f"`modelport jobs status {job_id}` shows the job")
    if as_json:
        output.emit_json(job)
        return
    answer = job["result"].get("body")
    output.emit_json(json.loads(client.job_result(job_id)) if answer is None else answer)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A callback that shows each polled status as rows done of rows total."""
    bar = output.rows_progress(quiet=quiet, transient=True)
    task = bar.add_task("queued", total=None)

    def shown(job: dict[str, Any]) -> None:
        progress = job["progress"]
        bar.update(
            task,
            description=job["state"],
            completed=progress["rows_done"],
            total=progress["rows_total"],
        )

    with bar:
        yield shown


def _table(title: str, jobs: list[dict[str, Any]]) -> None:
    output.table(
        title,
        ["id", "model", "state", "progress", "attempts", "created (UTC)"],
        [
            [
                job["id"],
                job["model"],
                job["state"],
                _rows(job["progress"]),
                job["attempts"],
                _moment(job["created_at"]),
            ]
            for job in jobs
        ],
    )


def _rows(progress: dict[str, Any]) -> str:
    total = progress["rows_total"]
    return f"{progress['rows_done']}/{'?' if total is None else total}"


def _moment(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
