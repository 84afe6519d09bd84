"""`modelport alias set|delete|list`: the pointers servers follow.

Moving an alias switches every server that follows it, so `alias set` first checks that the
target could load (files present and unchanged, flavor installed); a version that fails the
check would leave a freshly started server with nothing to serve.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry

app = typer.Typer(no_args_is_help=True, help="Move, delete and list model aliases.")

_FORCE = "fix or re-register the version, or move the alias anyway with --force"


@app.command("set")
def alias_set(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    version: Annotated[int, typer.Argument(help="Version number the alias points at.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Skip the check that the version can load (files, hashes, flavor)."
        ),
    ] = False,
) -> None:
    """Point ALIAS at VERSION; servers following it switch after loading it."""
    with (
        opened_registry() as registry,
        output.reporting_errors({"artifact_integrity_error": _FORCE, "model_load_error": _FORCE}),
    ):
        if not force:
            registry.verify(registry.get_version(name, version))
        registry.set_alias(name, alias, version)
    output.console.print(f"{name}@{alias} -> v{version}")


@app.command("delete")
def alias_delete(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
) -> None:
    """Remove an alias."""
    with opened_registry() as registry:
        registry.delete_alias(name, alias)
    output.console.print(f"deleted {name}@{alias}")


@app.command("list")
def alias_list(
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """Current aliases of a model and every move they made."""
    with opened_registry() as registry:
        model = registry.get_model(name)
        history = registry.alias_history(name)
    if as_json:
        output.emit_json(
            {"aliases": dict(model.aliases), "history": [e.to_dict() for e in history]}
        )
        return
    output.table(f"{name} aliases", ["alias", "version"], sorted(model.aliases.items()))
    output.table(
        "history",
        ["at", "alias", "from", "to"],
        [
            (e.at.strftime("%Y-%m-%d %H:%M:%S"), e.alias, e.from_version, e.to_version)
            for e in history
        ],
    )
