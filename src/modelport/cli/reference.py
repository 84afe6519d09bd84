"""The CLI reference (docs/cli.md), rendered from the commands themselves.

``python -m modelport.cli.reference > docs/cli.md`` regenerates it; a test renders it again
and compares, so a flag that is added, renamed or re-described without the docs fails the
suite. Only the general conventions below are written by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import typer.main

from modelport.cli.main import app

PREAMBLE = """\
# CLI reference

Generated from the commands by `python -m modelport.cli.reference > docs/cli.md` (`make docs`);
a test fails when this file and the commands disagree.

Every command takes `-h` / `--help`; `modelport --version` prints the version. Commands that
list things take `--json`. Errors print `error: <title>: <detail>` and a `next:` step on stderr
and exit 1; usage errors exit 2.

Models are addressed as `name@alias` (follows the alias: it changes when someone moves the
alias), `name/3` (one fixed version) or `name` (follows the latest version: registering a new
version changes it, which is rarely what a server should do; `serve` warns about it).
"""

INPUTS = """\
## Input files

`register --sample` and `predict --input` read `.csv`, `.npy` or JSON; `-` reads stdin, where
JSON, CSV and `.npy` bytes are told apart by their content. JSON may be a list of rows,
`{"column": [values]}`, a list of row objects, or a V1 body with `instances` / `inputs`.

For a columns model, a CSV's first line is a header when it names any of the model's columns,
and the first row when it is as wide as the input and names none. Otherwise (a tensor model,
or `register --sample`) a first line holding anything but numbers is a header, as is pandas'
default `0,1,2,...`, and an all-numeric first line is the first row.
`predict` shapes the input for the model: named columns become one tensor, in file order, for
a tensor model, and positional rows become the named columns, in signature order, for a
columns model; for a sample without a header, `register` infers a tensor signature.
"""


def render() -> str:
    """The whole reference as Markdown."""
    root = typer.main.get_command(app)
    context = root.make_context("modelport", [], resilient_parsing=True)
    parts = [PREAMBLE, *_sections(root, context, "modelport"), INPUTS]
    return "\n".join(parts)


def _sections(command: Any, context: Any, path: str) -> Iterator[str]:
    lines = [
        f"## `{path}`",
        "",
        (command.help or "").strip(),
        "",
        f"    {path} {' '.join(command.collect_usage_pieces(context))}",
        "",
    ]
    rows = [
        record
        for param in command.get_params(context)
        if param.name != "help" and (record := param.get_help_record(context))
    ]
    if rows:
        lines += ["| argument / option | meaning |", "|---|---|"]
        lines += [f"| `{_cell(name)}` | {_cell(meaning)} |" for name, meaning in rows]
        lines.append("")
    subcommands = getattr(command, "commands", {})
    if subcommands:
        lines += ["| command | what it does |", "|---|---|"]
        lines += [
            f"| `{path} {name}` | {_cell(sub.get_short_help_str(limit=200))} |"
            for name, sub in subcommands.items()
        ]
        lines.append("")
    yield "\n".join(lines)
    for name, sub in subcommands.items():
        child = sub.make_context(name, [], parent=context, resilient_parsing=True)
        yield from _sections(sub, child, f"{path} {name}")


def _cell(text: str) -> str:
    """One Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    sys.stdout.write(render())
