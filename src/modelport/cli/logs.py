"""`modelport logs`: what the served models were asked and what they answered, from the
prediction log, for the person on call (`--follow` tails it, `--json` feeds scripts)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Annotated, Any

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry
from modelport.monitoring.predictions import (
    MAX_QUERY_ROWS,
    LoggedPrediction,
    PredictionQuery,
    PredictionStore,
)

FOLLOW_POLL_S = 1.0
SHOWN_CHARS = 60


def logs(
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Only this version.")] = None,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    request_id: Annotated[str | None, typer.Option(help="Only this request id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this ISO time or age: 30m, 24h, 7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this ISO time or age.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_QUERY_ROWS, help="At most this many, newest.")
    ] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C ends).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show logged predictions, oldest of the newest `--limit` first (the server must run
    with MODELPORT_PREDICTION_LOG=true)."""
    with output.reporting_errors():
        query = PredictionQuery.parsed(
            model=model,
            version=version,
            deployment=deployment,
            request_id=request_id,
            since=since,
            until=until,
            limit=limit,
        )
    with opened_registry() as registry:
        store = PredictionStore(registry.database)
        entries = list(reversed(store.query(query)))
        _show(entries, as_json)
        last = entries[-1].id if entries else _newest_id(store)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how following ends
            while follow:
                time.sleep(FOLLOW_POLL_S)
                page = store.query(query.following(last))
                if page:
                    _show(page, as_json)
                    last = page[-1].id


def _newest_id(store: PredictionStore) -> int:
    """Where following starts when nothing matched yet: after everything logged so far."""
    newest = store.query(PredictionQuery(limit=1))
    return newest[0].id if newest else 0


def _show(entries: list[LoggedPrediction], as_json: bool) -> None:
    if as_json:
        for entry in entries:  # one object per line: `| jq` and `tail -f` friendly
            typer.echo(json.dumps(entry.to_dict(), default=str))
        return
    for entry in entries:  # plain echo: no markup, so `[canary]` prints as written
        typer.echo(_line(entry))


def _line(entry: LoggedPrediction) -> str:
    served = f"{entry.model}/{entry.version}" if entry.model else "-"
    if entry.deployment:
        served = f"{entry.deployment}[{entry.slot}] {served}"
    answer = entry.error or _short(entry.outputs)
    return (
        f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.request_id} {entry.protocol} {served} "
        f"{entry.status} {entry.latency_ms:.1f}ms rows={entry.rows} in={_short(entry.inputs)} "
        f"out={answer}"
    )


def _short(columns: dict[str, Any] | None) -> str:
    text = "-" if columns is None else json.dumps(columns, separators=(",", ":"))
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
