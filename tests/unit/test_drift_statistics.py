"""Drift statistics against scipy and hand computations on the same arrays, and the verdicts."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelport.monitoring.binning import (
    ColumnSummary,
    FeatureKind,
    bin_counts,
    bin_shares,
    category_counts,
    quantile_edges,
)
from modelport.monitoring.statistics import (
    SMALL_SAMPLE,
    THRESHOLDS,
    StatisticName,
    chi2,
    column_drift,
    dataset_drift,
    default_method,
    drift_against,
    js,
    js_of_counts,
    ks,
    missing_rate_change,
    psi,
    psi_of_counts,
    wasserstein,
    wasserstein_of_sorted,
)

NUMERIC, CATEGORICAL = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL


def normal(seed: int, n: int, loc: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, 1.0, size=n)


def test_quantile_edges_keep_duplicates_and_open_the_outer_ones() -> None:
    # quantiles 0, .25, .5, .75, 1 of five values fall on positions 0..4: 0, 1, 1, 1, 2
    edges = quantile_edges(np.array([0.0, 1.0, 1.0, 1.0, 2.0]), bins=4)
    assert edges.tolist() == [-np.inf, 1.0, 1.0, 1.0, np.inf]
    # [-inf, 1) [1, 1) [1, 1) [1, inf): a value on an edge opens the bin after its last copy
    assert bin_counts(np.array([0.0, 1.0, 1.0, 1.0, 2.0]), edges).tolist() == [1, 0, 0, 4]
    assert bin_counts(np.array([-5.0, 0.999, 1.0, 1e9]), edges).tolist() == [2, 0, 0, 2]


def test_quantile_edges_interpolate_linearly() -> None:
    edges = quantile_edges(np.array([0.0, 10.0]), bins=4)
    assert edges.tolist() == [-np.inf, 2.5, 5.0, 7.5, np.inf]


def test_psi_by_hand_with_duplicate_edges_and_the_smoothing_rule() -> None:
    reference = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # bins as above: shares .2, 0, 0, .8
    current = np.array([0.0, 0.0, 1.0, 2.0])  # shares .5, 0, 0, .5
    norm = 1 + 4e-6  # 1e-6 added to each of four shares, then each side renormalised
    e = [(0.2 + 1e-6) / norm, 1e-6 / norm, 1e-6 / norm, (0.8 + 1e-6) / norm]
    a = [(0.5 + 1e-6) / norm, 1e-6 / norm, 1e-6 / norm, (0.5 + 1e-6) / norm]
    by_hand = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    result = psi(reference, current, NUMERIC, bins=4)
    assert result.value == pytest.approx(by_hand, rel=1e-9)
    assert result.value == pytest.approx(0.3 * math.log(2.5) - 0.3 * math.log(0.625), rel=1e-4)
    assert (result.method, result.threshold, result.drifted) == (StatisticName.PSI, 0.2, True)


def test_psi_of_unseen_categories_by_hand() -> None:
    reference = np.array(["a", "a", "b"])
    current = np.array(["a", "c"])
    norm = 1 + 3e-6  # categories a, b, c
    e = [(2 / 3 + 1e-6) / norm, (1 / 3 + 1e-6) / norm, 1e-6 / norm]
    a = [(0.5 + 1e-6) / norm, 1e-6 / norm, (0.5 + 1e-6) / norm]
    by_hand = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert psi(reference, current).value == pytest.approx(by_hand, rel=1e-9)
    assert by_hand > 5  # an unseen category costs ln(0.5 / 1e-6) times its share


def test_js_is_scipys_jensenshannon_distance_over_the_psi_bins() -> None:
    reference, current = normal(1, 2000), normal(2, 3000, loc=0.3)
    edges = quantile_edges(reference)
    expected = jensenshannon(bin_shares(reference, edges), bin_shares(current, edges), base=2)
    assert js(reference, current).value == pytest.approx(float(expected), rel=1e-9)


def test_js_over_categories_counts_unseen_ones() -> None:
    reference = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2, dtype=object)
    current = np.array(["a"] * 2 + ["c"] * 4 + ["d"] * 4, dtype=object)
    union = ["a", "b", "c", "d"]
    p = [Counter(reference.tolist())[k] / 10 for k in union]
    q = [Counter(current.tolist())[k] / 10 for k in union]
    assert js(reference, current).value == pytest.approx(
        float(jensenshannon(p, q, base=2)), rel=1e-9
    )
    assert js(np.array(["a"]), np.array(["b"])).value == 1.0  # disjoint: the maximum


@pytest.mark.parametrize(("n_reference", "n_current"), [(1000, 1000), (500, 20_000), (3, 7)])
def test_wasserstein_is_scipys_over_the_reference_std(n_reference: int, n_current: int) -> None:
    reference, current = normal(3, n_reference), normal(4, n_current, loc=0.2) * 1.5
    expected = stats.wasserstein_distance(reference, current) / reference.std()
    result = wasserstein(reference, current)
    assert result.value == pytest.approx(expected, rel=1e-9)
    assert result.drifted == bool(expected >= 0.1)


def test_wasserstein_with_ties_across_both_sides() -> None:
    rng = np.random.default_rng(5)
    u, v = rng.integers(0, 5, 300).astype(float), rng.integers(1, 7, 1000).astype(float)
    assert wasserstein_of_sorted(np.sort(u), np.sort(v)) == pytest.approx(
        stats.wasserstein_distance(u, v), rel=1e-9
    )


def test_a_constant_reference_keeps_the_raw_wasserstein_distance() -> None:
    constant = np.full(10, 3.0)
    assert wasserstein(constant, np.full(4, 3.0)).value == 0.0
    current = np.array([3.0, 3.0, 3.0, 5.0])
    assert wasserstein(constant, current).value == pytest.approx(0.5, rel=1e-9)
    assert stats.wasserstein_distance(constant, current) == pytest.approx(0.5, rel=1e-9)


def test_ks_is_scipys_ks_2samp_and_decides_on_its_p_value() -> None:
    reference, current = normal(6, 400), normal(7, 600, loc=0.4)
    expected = stats.ks_2samp(reference, current)
    result = ks(reference, current)
    assert result.value == pytest.approx(float(expected.statistic), rel=1e-9)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9)
    assert expected.pvalue < 0.05
    assert result.drifted is True
    assert ks(reference, current, threshold=expected.pvalue / 2).drifted is False


def test_chi2_is_the_uncorrected_homogeneity_test_over_the_union() -> None:
    reference = np.array(["a"] * 30 + ["b"] * 20)
    current = np.array(["a"] * 10 + ["b"] * 25 + ["c"] * 5)
    table = np.array([[30, 20, 0], [10, 25, 5]])
    expected = stats.chi2_contingency(table, correction=False)
    result = chi2(reference, current)
    assert result.value == pytest.approx(float(expected.statistic), rel=1e-9)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9)


def test_chi2_on_two_categories_has_no_continuity_correction() -> None:
    reference, current = np.array(["a"] * 30 + ["b"] * 20), np.array(["a"] * 18 + ["b"] * 22)
    table = np.array([[30, 20], [18, 22]])
    uncorrected = stats.chi2_contingency(table, correction=False)
    corrected = stats.chi2_contingency(table, correction=True)
    assert chi2(reference, current).value == pytest.approx(float(uncorrected.statistic), rel=1e-9)
    assert uncorrected.statistic != pytest.approx(corrected.statistic)


def test_chi2_of_a_single_category_is_no_test() -> None:
    result = chi2(np.array(["a", "a"]), np.array(["a"]))
    assert (result.value, result.p_value, result.drifted) == (0.0, 1.0, False)


def test_missing_values_are_dropped_before_and_measured_apart() -> None:
    reference, current = normal(8, 900), normal(9, 700, loc=0.1)
    holey_reference = np.concatenate([reference, [np.nan] * 100])
    holey_current = np.concatenate([[np.nan] * 200, current, [np.inf, -np.inf]])
    for statistic in (psi, js, ks, wasserstein):
        assert statistic(holey_reference, holey_current) == statistic(reference, current)
    change = missing_rate_change(holey_reference, holey_current)
    assert change.value == pytest.approx(202 / 902 - 100 / 1000, rel=1e-9)
    assert change.drifted is True


def test_none_and_nan_are_the_missing_categories() -> None:
    reference = np.array(["a", None, "b", float("nan"), "a"], dtype=object)
    current = np.array(["a", "b", "b", "b"], dtype=object)
    assert category_counts(reference) == {"a": 2, "b": 1}
    assert missing_rate_change(reference, current).value == pytest.approx(-0.4, rel=1e-9)
    assert psi(reference, current) == psi(np.array(["a", "b", "a"]), current)


def test_categories_compare_by_their_text() -> None:
    assert category_counts(np.array([1, 2, 2], dtype=object)) == {"1": 1, "2": 2}
    assert category_counts(np.array([True, False, True])) == {"False": 1, "True": 2}
    assert psi(np.array([1, 2], dtype=object), np.array(["1", "2"])).value == 0.0


@pytest.mark.parametrize(
    ("kind", "n_reference", "n_current", "method"),
    [
        (NUMERIC, SMALL_SAMPLE, 1_000_000, StatisticName.KS),
        (NUMERIC, 1_000_000, SMALL_SAMPLE, StatisticName.KS),
        (NUMERIC, SMALL_SAMPLE + 1, SMALL_SAMPLE + 1, StatisticName.WASSERSTEIN),
        (CATEGORICAL, 50, 50_000, StatisticName.CHI2),
        (CATEGORICAL, 5000, 50_000, StatisticName.JS),
    ],
)
def test_a_test_decides_while_either_side_is_small_a_distance_after(
    kind: FeatureKind, n_reference: int, n_current: int, method: StatisticName
) -> None:
    assert default_method(kind, n_reference, n_current) is method


def test_large_samples_are_judged_by_distance_not_by_significance() -> None:
    reference = normal(10, 5000)
    same = column_drift(reference, normal(11, 50_000))
    assert (same.method, same.drifted) == (StatisticName.WASSERSTEIN, False)
    # a twentieth of a standard deviation: significant to KS at these sizes, not drift
    tiny = column_drift(reference, normal(12, 50_000, loc=0.05))
    assert tiny[StatisticName.KS].drifted is True
    assert tiny.drifted is False
    shifted = column_drift(reference, normal(13, 50_000, loc=0.5))
    assert (shifted.method, shifted.drifted) == (StatisticName.WASSERSTEIN, True)
    assert shifted.decision.value == pytest.approx(0.5, abs=0.05)


def test_small_samples_are_judged_by_the_test() -> None:
    reference = normal(14, 300)
    same = column_drift(reference, normal(15, 200))
    assert (same.method, same.drifted) == (StatisticName.KS, False)
    shifted = column_drift(reference, normal(16, 200, loc=0.5))
    assert (shifted.method, shifted.drifted) == (StatisticName.KS, True)
    assert shifted.decision.p_value is not None
    assert shifted.decision.p_value < 1e-4


def test_categorical_column_drift_reports_every_statistic() -> None:
    rng = np.random.default_rng(17)
    reference = rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2])
    same = column_drift(reference, rng.choice(["a", "b", "c"], size=50_000, p=[0.5, 0.3, 0.2]))
    assert same.kind is CATEGORICAL
    assert [r.method for r in same.statistics] == ["psi", "js", "chi2", "missing_rate"]
    assert (same.method, same.drifted) == (StatisticName.JS, False)
    moved = column_drift(reference, rng.choice(["a", "b", "d"], size=50_000, p=[0.2, 0.3, 0.5]))
    assert (moved.method, moved.drifted) == (StatisticName.JS, True)
    small = column_drift(reference[:500], rng.choice(["a", "b"], size=400))
    assert (small.method, small.drifted) == (StatisticName.CHI2, True)


def test_an_explicit_method_and_threshold_decide() -> None:
    reference, current = normal(18, 3000), normal(19, 3000, loc=0.05)
    drift = column_drift(reference, current, method=StatisticName.PSI, threshold=1e-4)
    assert (drift.method, drift.decision.threshold, drift.drifted) == ("psi", 1e-4, True)
    assert drift[StatisticName.WASSERSTEIN].threshold == THRESHOLDS[StatisticName.WASSERSTEIN]
    with pytest.raises(ValueError, match="does not apply"):
        column_drift(reference, current, method=StatisticName.CHI2)


def test_a_column_gone_missing_is_decided_by_its_missing_rate() -> None:
    drift = column_drift(normal(20, 2000), np.full(500, np.nan))
    assert [r.method for r in drift.statistics] == ["missing_rate"]
    assert (drift.method, drift.drifted, drift.decision.value) == ("missing_rate", True, 1.0)


def test_a_sample_without_values_leaves_the_decision_to_psi() -> None:
    reference = normal(24, 5000)
    drift = drift_against(ColumnSummary.of(reference), np.full(50, np.nan), normal(25, 5000))
    assert [r.method for r in drift.statistics] == ["psi", "js", "missing_rate"]
    assert drift.method is StatisticName.PSI
    assert drift[StatisticName.PSI] == psi(reference, normal(25, 5000))


def test_a_reference_with_nothing_present_is_summarised_and_stored() -> None:
    summary = ColumnSummary.of(np.full(4, np.nan))
    assert (summary.rows, summary.missing, summary.edges, summary.counts) == (4, 4, (), ())
    assert ColumnSummary.from_dict(summary.to_dict()) == summary
    drift = drift_against(summary, np.full(4, np.nan), normal(26, 100))
    assert (drift.method, drift.decision.value, drift.drifted) == ("missing_rate", -1.0, True)


def test_dataset_drift_is_the_share_of_drifted_features() -> None:
    reference = normal(21, 3000)
    calm = column_drift(reference, normal(22, 3000))
    moved = column_drift(reference, normal(23, 3000, loc=1.0))
    assert dataset_drift([calm, calm, moved]).drifted is False
    verdict = dataset_drift([calm, moved])
    assert (verdict.features, verdict.drifted_features, verdict.share) == (2, 1, 0.5)
    assert verdict.drifted is True
    assert dataset_drift([calm, calm, moved], share=0.3).drifted is True
    assert dataset_drift([]).drifted is False


counts = st.lists(st.integers(0, 1000), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_psi_and_js_properties(data: st.DataObject) -> None:
    p = np.array(data.draw(counts.filter(any)), dtype=float)
    q = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=p.size, max_size=p.size)))
    q = q.astype(float)
    if not q.any():
        q[0] = 1.0
    assert psi_of_counts(p, q) >= 0.0
    assert psi_of_counts(p, p) == 0.0
    distance = js_of_counts(p, q)
    assert 0.0 <= distance <= 1.0
    assert js_of_counts(q, p) == pytest.approx(distance, rel=1e-9, abs=1e-12)
    with np.errstate(invalid="ignore"):  # scipy takes the root of a rounding-negative 0
        expected = float(jensenshannon(p, q, base=2))
    assert distance == pytest.approx(0.0 if math.isnan(expected) else expected, rel=1e-9, abs=1e-7)
