"""`modelport stream`: score the messages of a Redis stream as they arrive, one answer per
message in a sink stream, until SIGTERM or Ctrl-C (which finish the micro-batch in flight)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from enum import StrEnum
from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.sessions import current_settings
from modelport.config import Settings
from modelport.errors import ConfigurationError
from modelport.jobs.formats import JobFormat
from modelport.jobs.streaming import Counts, StreamAddress, StreamOptions, consume
from modelport.logs import configure_logging
from modelport.registry import ModelAddress

_HINT = (
    "check --source and --sink (redis://host:6379/<db>/<stream>) and that Redis takes them; "
    "`modelport config show` prints the settings in use"
)


class BodyFormat(StrEnum):
    AUTO = "auto"
    V1 = "v1"
    V2 = "v2"
    MLFLOW = "mlflow"


def stream(
    model: Annotated[str, typer.Option("--model", "-m", help="name, name/3 or name@alias")],
    source: Annotated[
        str,
        typer.Option(help="Stream to read: redis://host:6379/<db>/<stream>."),
    ],
    sink: Annotated[
        str,
        typer.Option(help="Stream for the answers: redis://host:6379/<db>/<stream>."),
    ],
    group: Annotated[
        str | None, typer.Option(help="Consumer group (default: modelport-<model name>).")
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(help="Consumer name in the group (default: <host>-<pid>)."),
    ] = None,
    dead_letter: Annotated[
        str | None,
        typer.Option(
            help="Stream, beside the source, for messages that cannot be answered "
            "(default: <source stream>.dead)."
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option(min=1, help="Messages read, predicted and acked at a time.")
    ] = 64,
    block_ms: Annotated[
        int, typer.Option(min=1, help="How long one read waits for new messages.")
    ] = 1000,
    min_idle_ms: Annotated[
        int,
        typer.Option(
            min=1,
            help="Messages another consumer has left pending this long are claimed "
            "(it was killed); checked every half of it.",
        ),
    ] = 30_000,
    max_deliveries: Annotated[
        int,
        typer.Option(min=1, help="A message handed out more often goes to the dead letters."),
    ] = 5,
    format: Annotated[
        BodyFormat, typer.Option(help="Protocol of the bodies (auto: told from each body).")
    ] = BodyFormat.AUTO,
    field: Annotated[str, typer.Option(help="Message field holding the body.")] = "body",
    sink_maxlen: Annotated[
        int | None,
        typer.Option(min=1, help="Trim the sink to about this many entries (MAXLEN ~)."),
    ] = None,
) -> None:
    """Score a Redis stream's messages as they arrive, into a sink stream."""
    with output.reporting_errors({"configuration_error": _HINT}):
        try:  # redis is an extra; every other command starts without importing it
            import redis  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                f"streaming needs redis (pip install 'modelport[redis]'): {exc}"
            ) from exc
        source_address = StreamAddress.parse(source)
        name = ModelAddress.parse(model).name
        options = StreamOptions(
            model,
            source_address,
            StreamAddress.parse(sink),
            dead_letter or f"{source_address.stream}.dead",
            group or f"modelport-{name}",
            consumer or f"{socket.gethostname()}-{os.getpid()}",
            field.encode(),
            None if format is BodyFormat.AUTO else JobFormat(format.value),
            batch,
            block_ms,
            min_idle_ms,
            max_deliveries,
            sink_maxlen,
        )
        settings = current_settings()
        configure_logging(settings)
        counts = asyncio.run(_consume_until_stopped(settings, options))
    output.console.print(
        f"stopped: {counts.read:,} read, {counts.written:,} written, "
        f"{counts.dead_lettered:,} dead-lettered",
        highlight=False,
    )


async def _consume_until_stopped(settings: Settings, options: StreamOptions) -> Counts:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop(signum: signal.Signals) -> None:
        stopping.set()
        loop.remove_signal_handler(signum)  # a second signal stops at once

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)

    def started(loaded: str) -> None:
        output.console.print(
            f"streaming {options.source} -> {options.sink} with {loaded} as "
            f"{options.group}/{options.consumer} (dead letters: {options.dead_letter}); "
            "SIGTERM or Ctrl-C stops after the micro-batch in flight",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    return await consume(settings, options, stopping, started)
