"""A drift report as one self-contained HTML page: per feature, the verdict with the
statistic that decided it, and the reference against the current window as paired bars over
the reference's bins (numeric) or its most frequent categories. No script, no external file:
it opens offline and can be attached to a ticket."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from modelport.monitoring.binning import (
    ColumnSummary,
    FeatureKind,
    bin_counts,
    category_counts,
    present,
)
from modelport.monitoring.profile import DriftReport, ReferenceProfile
from modelport.monitoring.statistics import FeatureDrift

MAX_CATEGORIES = 20
BAR_W, PLOT_H = 14, 90


@dataclass(frozen=True, slots=True)
class Section:
    """One version's report, with what its plots are drawn from."""

    title: str
    report: DriftReport
    reference: ReferenceProfile
    current: dict[str, np.ndarray]


def render(title: str, sections: Sequence[Section], note: str = "") -> str:
    """The page; ``note`` says why a version has no section (no reference, too few rows)."""
    body = "".join(_section(s) for s in sections) + (f"<p>{escape(note)}</p>" if note else "")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{escape(title)}</title><style>
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}
.drift{{color:#b00020;font-weight:600}} .ok{{color:#1b5e20}} .ref{{fill:#9e9e9e}}
.cur{{fill:#1565c0}} .legend span{{display:inline-block;width:10px;height:10px;margin:0 4px}}
</style></head><body><h1>{escape(title)}</h1>
<p class="legend"><span style="background:#9e9e9e"></span>reference
<span style="background:#1565c0"></span>current window</p>{body}</body></html>"""


def _section(section: Section) -> str:
    report = section.report
    dataset = report.dataset
    verdict = _verdict(dataset.drifted)
    rows = "".join(
        _feature_row(name, drift, section.reference.features[name], section.current.get(name))
        for name, drift in report.features.items()
    )
    predictions = ""
    if report.predictions is not None and section.reference.predictions is not None:
        predictions = (
            "<h3>Predictions</h3><table>"
            + _feature_row("predictions", report.predictions, section.reference.predictions, None)
            + "</table>"
        )
    notes = "".join(
        f"<p>{label}: {escape(', '.join(names))}</p>"
        for label, names in (
            ("In the reference, not in the window", report.absent_features),
            ("In the window, not in the reference", report.unknown_features),
        )
        if names
    )
    return f"""<h2>{escape(section.title)}</h2>
<p>{verdict}: {dataset.drifted_features} of {dataset.features} features drifted
({dataset.share:.0%}; the data set drifts at {dataset.threshold:.0%}).
{report.rows:,} rows in the window against {report.reference_rows:,} reference rows.</p>
<table><tr><th>feature</th><th>verdict</th><th>decided by</th><th>missing (ref → now)</th>
<th>distribution</th></tr>{rows}</table>{predictions}{notes}"""


def _feature_row(
    name: str, drift: FeatureDrift, summary: ColumnSummary, current: np.ndarray | None
) -> str:
    decision = drift.decision
    rate_now = "" if current is None else f" → {1 - drift.n_current / max(current.size, 1):.1%}"
    return (
        f"<tr><td>{escape(name)}</td><td>{_verdict(drift.drifted)}</td>"
        f"<td>{decision.method} = {decision.value:.4g} (threshold {decision.threshold:g})</td>"
        f"<td>{summary.missing_rate:.1%}{rate_now}</td>"
        f"<td>{_plot(summary, current)}</td></tr>"
    )


def _verdict(drifted: bool) -> str:
    return '<span class="drift">drifted</span>' if drifted else '<span class="ok">stable</span>'


def _plot(summary: ColumnSummary, current: np.ndarray | None) -> str:
    """Paired bars of shares: reference (grey) and current (blue), one pair per bin or per
    category (the reference's most frequent; shares stay of all present values)."""
    if summary.present == 0:
        return ""
    kept = None if current is None else present(current, summary.kind)
    if summary.kind is FeatureKind.NUMERIC:
        labels = [_bin_label(lo, hi) for lo, hi in itertools.pairwise(summary.edges)]
        reference = np.array(summary.counts, dtype=float)
        now = None if kept is None else bin_counts(kept, np.array(summary.edges))
    else:
        top = sorted(summary.frequencies().items(), key=lambda kv: -kv[1])[:MAX_CATEGORIES]
        labels = [category for category, _ in top]
        reference = np.array([count for _, count in top], dtype=float)
        now = None
        if kept is not None:
            counts = category_counts(kept)
            now = np.array([counts.get(label, 0) for label in labels], dtype=float)
    current_shares = None if now is None or kept is None else now / max(kept.size, 1)
    return _svg(labels, reference / summary.present, current_shares)


def _svg(labels: list[str], reference: np.ndarray, current: np.ndarray | None) -> str:
    top = max(float(reference.max()), float(current.max()) if current is not None else 0.0)
    scale = PLOT_H / top if top else 0.0
    width = len(labels) * (2 * BAR_W + 6)
    bars = []
    for index, label in enumerate(labels):
        x = index * (2 * BAR_W + 6)
        pairs = [("ref", reference[index])]
        if current is not None:
            pairs.append(("cur", current[index]))
        for offset, (css, share) in enumerate(pairs):
            height = share * scale
            bars.append(
                f'<rect class="{css}" x="{x + offset * BAR_W}" y="{PLOT_H - height:.1f}" '
                f'width="{BAR_W - 1}" height="{height:.1f}"><title>{escape(label)}: '
                f"{share:.1%}</title></rect>"
            )
    return (
        f'<svg width="{width}" height="{PLOT_H}" role="img" aria-label="distribution">'
        + "".join(bars)
        + "</svg>"
    )


def _bin_label(lo: float, hi: float) -> str:
    return f"[{lo:.4g}, {hi:.4g})"
