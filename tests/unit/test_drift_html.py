"""The HTML drift report: one self-contained page, a verdict and a plot per feature, names
escaped."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

from modelport.monitoring.drift_html import Section, render
from modelport.monitoring.profile import capture, compare


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_a_section_per_version_with_plots_and_escaped_names() -> None:
    rng = np.random.default_rng(5)
    odd = "<script>alert(1)</script>"
    reference_columns = {
        "amount": rng.normal(50, 10, 3000),
        odd: rng.choice(["a", "b", "c"], 3000).astype(object),
    }
    current = {
        "amount": rng.normal(80, 10, 2000),
        odd: rng.choice(["a", "b", "c"], 2000).astype(object),
    }
    reference = capture(reference_columns, rng.choice([0, 1], 3000))
    report = compare(reference, current, rng.choice([0, 1], 2000))
    page = render("fraud — last hour", [Section("fraud/3", report, reference, current)])

    parsed = Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags  # the odd feature name is text, not markup
    assert parsed.tags.count("svg") == 3  # two features and the predictions
    text = " ".join(parsed.text)
    assert odd in text
    assert "fraud/3" in text
    assert "1 of 2 features drifted" in text
    assert "http" not in page  # nothing is fetched from anywhere: it opens offline
