"""`modelport audit [verify]`: who changed what in the registry, and whether the log is intact.

The log is append-only in the database and hash-chained; `audit verify` recomputes the chain,
so an entry changed or removed behind modelport's back is named, and the command exits 1.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry
from modelport.durations import parse_instant
from modelport.errors import AuditIntegrityError
from modelport.registry.audit import MAX_PAGE, AuditEntry

app = typer.Typer(
    invoke_without_command=True,
    help="List audit entries (who changed what, when), or verify the log's hash chain.",
)

_TAMPERED = (
    "the entry named above (or the one before it) was changed or removed outside modelport; "
    "compare it with a backup of the database"
)
_HASH = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


@app.callback()
def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="From this ISO time or age: 30m, 24h, 7d, 2w.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this ISO time or age.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor, e.g. local:alice, key:ab12cd34ef56.")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. alias.set, model.register.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Only this target: iris/3, iris@production, or iris for all of it."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_PAGE, help="At most this many entries.")
    ] = 100,
    after_id: Annotated[
        int | None, typer.Option(min=0, help="Continue after this entry id (the next page).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List audit entries, oldest first (who changed what, when, before and after)."""
    if ctx.invoked_subcommand is not None:
        return
    with output.reporting_errors():
        start = parse_instant(since, "since") if since else None
        end = parse_instant(until, "until") if until else None
    with opened_registry() as registry:
        entries = registry.audit.entries(
            since=start,
            until=end,
            actor=actor,
            action=action,
            target=target,
            limit=limit,
            after_id=after_id,
        )
    if as_json:
        output.emit_json([e.to_dict() for e in entries])
        return
    output.table(
        "audit log",
        ["id", "at", "actor", "action", "target", "change"],
        [
            (e.id, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.target, _change(e))
            for e in entries
        ],
    )
    if len(entries) == limit:
        output.console.print(f"more: --after-id {entries[-1].id}", highlight=False)


@app.command()
def verify(as_json: JsonFlag = False) -> None:
    """Recompute the hash chain; exit 1 naming the first entry changed or removed."""
    with opened_registry() as registry:
        result = registry.audit.verify()
    if as_json:
        output.emit_json(result.to_dict())
    if not result.ok:
        output.fail(AuditIntegrityError(result.reason or "the chain is broken"), _TAMPERED)
    if not as_json:
        output.console.print(
            f"audit log ok: {result.count} entries, head {result.head}", highlight=False
        )


def _change(entry: AuditEntry) -> str:
    """``before -> after`` on one line, file hashes shortened."""

    def shown(value: Any) -> str:
        return "-" if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    return _HASH.sub(r"\1…", f"{shown(entry.before)} -> {shown(entry.after)}")
