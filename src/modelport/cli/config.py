"""`modelport config show`: the effective settings, or what every setting means."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.sessions import current_settings
from modelport.config import describe_fields, dump_yaml

app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")


@app.command("show")
def config_show(
    describe: Annotated[bool, typer.Option(help="List every setting.")] = False,
) -> None:
    """Print the effective settings (secrets redacted)."""
    if describe:
        output.table("settings", ["variable", "default", "description"], describe_fields())
        return
    typer.echo(dump_yaml(current_settings()))
