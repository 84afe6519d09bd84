"""Sample ratio mismatch: did the split assign units in the planned proportions? A mismatch
means the assignment or the logging is broken, and every comparison of the experiment is
suspect, so it is checked before any effect is read.

Chi-square goodness of fit of the observed units per variant against the planned weights
(normalised to shares): expected_i = total · w_i / Σw, χ² = Σ (observed - expected)² /
expected over the variants with a planned weight, df = their number - 1. Mismatch when
p < threshold (0.001 by default: checked on every look, a looser threshold would cry wolf).

A variant planned at weight 0 takes no part in the test while it has no units; one unit in it
is a certain mismatch (χ² = inf, p = 0), since the split should never send it anyone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from modelport.errors import InvalidInputError
from modelport.experiments.analysis.checks import count, open_unit
from modelport.experiments.analysis.interval import JsonValue, json_float

DEFAULT_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SrmResult:
    chi2: float
    """inf when a variant planned at weight 0 has units."""
    df: int
    p_value: float
    mismatch: bool
    """p_value < threshold."""
    expected: tuple[float, ...]
    """Units each variant should have by the plan, in the order given."""
    threshold: float

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "chi2": json_float(self.chi2),
            "df": self.df,
            "p_value": self.p_value,
            "mismatch": self.mismatch,
            "expected": [float(e) for e in self.expected],
            "threshold": self.threshold,
        }


def sample_ratio_mismatch(
    counts: Sequence[int], weights: Sequence[float], *, threshold: float = DEFAULT_THRESHOLD
) -> SrmResult:
    """Chi-square test of units per variant against the planned weights (same order)."""
    threshold = open_unit(threshold, "threshold")
    if len(counts) != len(weights):
        raise InvalidInputError(
            f"{len(counts)} counts for {len(weights)} weights: one of each per variant",
            pointer="/weights",
        )
    observed = np.array([count(c, f"counts[{i}]") for i, c in enumerate(counts)], dtype=float)
    planned = _shares(weights)
    total = float(observed.sum())
    if total == 0.0:
        raise InvalidInputError("no units assigned yet: nothing to test", pointer="/counts")
    expected = total * planned
    in_plan = planned > 0.0
    df = int(in_plan.sum()) - 1
    if np.any(observed[~in_plan] > 0.0):
        chi2, p_value = math.inf, 0.0
    else:
        result = stats.chisquare(observed[in_plan], expected[in_plan])
        chi2, p_value = float(result.statistic), float(result.pvalue)
    return SrmResult(
        chi2=chi2,
        df=df,
        p_value=p_value,
        mismatch=p_value < threshold,
        expected=tuple(float(e) for e in expected),
        threshold=threshold,
    )


def _shares(weights: Sequence[float]) -> np.ndarray:
    planned = np.array([float(w) for w in weights], dtype=float)
    if not np.all(np.isfinite(planned)) or np.any(planned < 0.0):
        raise InvalidInputError(
            f"weights must be finite and not negative, got {list(weights)}", pointer="/weights"
        )
    if np.count_nonzero(planned) < 2:
        raise InvalidInputError(
            "a ratio needs at least two variants with a positive weight", pointer="/weights"
        )
    return np.asarray(planned / planned.sum(), dtype=np.float64)
