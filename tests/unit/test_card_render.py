"""Card rendering escapes what registrants wrote: no markup of theirs survives as markup."""

from __future__ import annotations

from modelport.registry.cards.document import CardDocument, Items, Section, Table
from modelport.registry.cards.render import html, markdown

HOSTILE = "<script>x</script> *bold* [link](http://e.x) a|b"


def _document(text: str) -> CardDocument:
    return CardDocument(
        "Card <1>",
        (Section("S", (text, Table(("k", "v"), (("key|", text),), "Cap"), Items((text,)))),),
    )


def test_markdown_backslashes_markup_and_keeps_tables_whole() -> None:
    page = markdown(_document(HOSTILE))
    assert "<script>" not in page
    assert "\\<script\\>x\\</script\\> \\*bold\\* \\[link\\](http://e.x) a\\|b" in page
    table_row = next(line for line in page.splitlines() if line.startswith("| key"))
    assert table_row.count(" | ") == 1  # the escaped pipes do not split the cells
    lines = markdown(_document("- item\n1. first\n# heading\n---")).split("## S\n\n")[1]
    assert lines.startswith("\\- item  \n1\\. first  \n\\# heading  \n\\---")


def test_html_escapes_every_value_and_keeps_paragraphs() -> None:
    page = html(_document(HOSTILE + "\n\nsecond"))
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<title>Card &lt;1&gt;</title>" in page
    assert "<p>second</p>" in page
    assert "<caption>Cap</caption>" in page
