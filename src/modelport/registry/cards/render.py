"""A card document as Markdown or as one self-contained HTML page.

Both renderers escape every piece of text they are given: the document's values come from
registrants and API callers, and a description holding ``<script>`` must show as text on
any page that displays the card (a Markdown viewer that passes HTML through, or ours). The
HTML page has no script and no external file, like the drift report.
"""

from __future__ import annotations

import re
from html import escape

from modelport.registry.cards.document import Block, CardDocument, Items, Table

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
"""Markup anywhere in a line: emphasis, code, links and images (their brackets), HTML and
entities, table cells, strikethrough."""
_MD_LINE_START = re.compile(r"^(\s*)(?:([-=]+\s*$|[-+]\s|#)|(\d+)\.(?=\s|$))", re.MULTILINE)
"""What makes a line markup only at its start: ``- x``, ``+ x``, ``1. x``, ``# x``, ``---``."""


def markdown(document: CardDocument) -> str:
    parts = [f"# {_md(document.title)}"]
    for section in document.sections:
        parts.append(f"## {_md(section.title)}")
        parts.extend(_md_block(block) for block in section.blocks if _shown(block))
    return "\n\n".join(parts) + "\n"


def html(document: CardDocument) -> str:
    body = "".join(
        f"<section><h2>{escape(s.title)}</h2>"
        + "".join(_html_block(b) for b in s.blocks if _shown(b))
        + "</section>"
        for s in document.sections
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{escape(document.title)}</title><style>
body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}} caption{{text-align:left;font-weight:600}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}
code{{font-size:12px}}
</style></head><body><h1>{escape(document.title)}</h1>{body}</body></html>
"""


def _shown(block: Block) -> bool:
    """Empty tables (no history yet) are left out rather than drawn as a bare header."""
    return not isinstance(block, Table) or bool(block.rows)


def _md(text: str) -> str:
    """``text`` as literal Markdown: every character that could start markup backslashed."""
    return _MD_LINE_START.sub(_line_start, _MD_SPECIAL.sub(r"\\\1", text))


def _line_start(match: re.Match[str]) -> str:
    indent, mark, number = match.groups()
    return f"{indent}\\{mark}" if mark else f"{indent}{number}\\."


def _md_cell(text: str) -> str:
    """One table cell: on one line, pipes escaped (a cell never starts a list)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split())) or " "


def _md_block(block: Block) -> str:
    if isinstance(block, Items):
        return "\n".join(f"- {_md(' '.join(item.split()))}" for item in block.items)
    if isinstance(block, Table):
        head = "| " + " | ".join(_md_cell(c) for c in block.columns) + " |"
        rule = "|" + "|".join("---" for _ in block.columns) + "|"
        rows = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        caption = [f"**{_md(block.caption)}**", ""] if block.caption else []
        return "\n".join([*caption, head, rule, *rows])
    # paragraphs stay apart, and lines inside one keep their breaks (two trailing spaces)
    paragraphs = [p for p in re.split(r"\n\s*\n", block.strip()) if p.strip()]
    return "\n\n".join("  \n".join(_md(line) for line in p.splitlines()) for p in paragraphs)


def _html_block(block: Block) -> str:
    if isinstance(block, Items):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
        head = "".join(f"<th>{escape(c)}</th>" for c in block.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in block.rows
        )
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    paragraphs = [p for p in re.split(r"\n\s*\n", block.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(escape(line) for line in p.splitlines()) + "</p>" for p in paragraphs
    )
