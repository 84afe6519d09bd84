"""The experiment analysis engine: pure functions from arrays or counts to frozen results.

Differences are B - A (A the control, B the treatment) and tests are two-sided; docs/
experiment-statistics.md states every formula. What a caller can get wrong (too few values,
NaN, a rate outside (0, 1)) raises InvalidInputError naming the argument; data that are valid
but define no answer (a constant metric, a control mean of 0) give NaN fields, None in
``to_dict``.
"""

from __future__ import annotations

from modelport.experiments.analysis.bootstrap import BootstrapStatistic, bootstrap_difference
from modelport.experiments.analysis.comparisons import Comparison, proportions_test, welch_test
from modelport.experiments.analysis.corrections import benjamini_hochberg, holm
from modelport.experiments.analysis.cuped import CupedResult, cuped
from modelport.experiments.analysis.interval import Interval, JsonValue
from modelport.experiments.analysis.lift import proportions_lift, relative_lift
from modelport.experiments.analysis.planning import (
    PlanMethod,
    PlannedMetric,
    SampleSize,
    cohens_h,
    means_power,
    means_sample_size,
    proportions_power,
    proportions_sample_size,
)
from modelport.experiments.analysis.sequential import SequentialResult, mixing_variance, msprt
from modelport.experiments.analysis.srm import SrmResult, sample_ratio_mismatch

__all__ = [
    "BootstrapStatistic",
    "Comparison",
    "CupedResult",
    "Interval",
    "JsonValue",
    "PlanMethod",
    "PlannedMetric",
    "SampleSize",
    "SequentialResult",
    "SrmResult",
    "benjamini_hochberg",
    "bootstrap_difference",
    "cohens_h",
    "cuped",
    "holm",
    "means_power",
    "means_sample_size",
    "mixing_variance",
    "msprt",
    "proportions_lift",
    "proportions_power",
    "proportions_sample_size",
    "proportions_test",
    "relative_lift",
    "sample_ratio_mismatch",
    "welch_test",
]
