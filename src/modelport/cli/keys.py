"""`modelport keys create|list|revoke|rotate`: API keys, managed on the registry directly.

Working on the database, not through a server, is also the bootstrap: the first ``admin`` key
is made here, by whoever can open the registry (and read the server secret).
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings, opened_registry
from modelport.durations import parse_duration
from modelport.registry import Registry
from modelport.security.keys import ApiKey, IssuedKey, KeyHasher, KeyStore, parse_scope
from modelport.security.secret import server_secret

app = typer.Typer(no_args_is_help=True, help="Create, list, revoke and rotate API keys.")


@app.command("create")
def keys_create(
    scope: Annotated[
        str, typer.Option(help="read, predict, deploy or admin (each includes the ones before).")
    ],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models the key is restricted to.")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d or 12h (default: never).")
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(help="Inference budget, e.g. 100/s:200 (default: the server's)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a key; its token is printed this once and never stored."""
    with output.reporting_errors():
        parsed_scope = parse_scope(scope)
        lifetime = None if expires is None else parse_duration(expires, field="expires")
    listed = [m.strip() for m in models.split(",") if m.strip()] if models else None
    with opened_registry() as registry:
        issued = _store(registry).create(
            parsed_scope,
            name=name,
            models=listed,
            expires_in=lifetime,
            rate_limit=rate_limit,
        )
    _show_issued(issued, as_json)


@app.command("list")
def keys_list(
    all_keys: Annotated[
        bool, typer.Option("--all", help="Include revoked and expired keys.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Keys and what they may do (never their tokens)."""
    with opened_registry() as registry:
        keys = _store(registry).list(include_inactive=all_keys)
    if as_json:
        output.emit_json({"keys": [k.to_dict() for k in keys]})
        return
    output.table("API keys", ["id", "name", "scope", "models", "expires", "state"], _rows(keys))


@app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (see keys list).")]) -> None:
    """Stop a key; servers refuse it within MODELPORT_AUTH_REFRESH_S."""
    with opened_registry() as registry:
        key = _store(registry).revoke(key_id)
    output.console.print(f"revoked {key.id}")


@app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="Key id (see keys list).")],
    grace: Annotated[
        str, typer.Option(help="How long the old token keeps working, e.g. 1h.")
    ] = "0s",
    as_json: JsonFlag = False,
) -> None:
    """Issue a new token with the same rights; the old one stops after --grace."""
    with output.reporting_errors():
        overlap = parse_duration(grace, field="grace")
    with opened_registry() as registry:
        issued = _store(registry).rotate(key_id, grace=overlap)
    _show_issued(issued, as_json)


def _store(registry: Registry) -> KeyStore:
    settings = current_settings()
    return KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))


def _show_issued(issued: IssuedKey, as_json: bool) -> None:
    if as_json:
        output.emit_json({**issued.key.to_dict(), "token": issued.token})
        return
    key = issued.key
    output.console.print(f"created key {key.id} (scope {key.scope.value})")
    output.console.print(issued.token, markup=False, highlight=False, soft_wrap=True)
    output.warn("the token is shown only now: store it (e.g. as MODELPORT_API_KEY)")


def _rows(keys: list[ApiKey]) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (
            k.id,
            k.name,
            k.scope.value,
            ",".join(k.models) if k.models else "all",
            k.expires_at.strftime("%Y-%m-%d %H:%M") if k.expires_at else "never",
            "revoked" if k.revoked_at else ("active" if k.to_dict()["active"] else "expired"),
        )
        for k in keys
    ]
