"""Rollout windows (counters summed across replicas) and the gates that judge them."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from modelport.rollout.gates import (
    DRIFT_MIN_ROWS,
    EARLY_SAMPLE,
    Evaluation,
    GateLimits,
    Verdict,
    evaluate,
)
from modelport.rollout.histograms import (
    LATENCY_RATIO,
    MAX_PREDICTION_BINS,
    LatencyHistogram,
    PredictionHistogram,
    psi,
)
from modelport.rollout.window import Comparison, SlotWindow, compare_outputs
from modelport.runtimes.batch import Outputs


def latencies(seed: int, n: int) -> np.ndarray:
    """Lognormal around 20 ms with a long tail, all above the first bucket edge."""
    return np.random.default_rng(seed).lognormal(mean=math.log(0.02), sigma=1.0, size=n) + 1e-4


def latency_histogram(values: np.ndarray) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values.tolist():
        histogram.record(value)
    return histogram


def roundtrip(data: object) -> object:
    return json.loads(json.dumps(data))


# --- latency ---------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.99, 0.999, 1.0])
def test_quantile_is_never_low_and_at_most_one_bucket_ratio_high(q: float) -> None:
    values = latencies(seed=1, n=20_000)
    true = float(np.quantile(values, q, method="inverted_cdf"))
    estimate = latency_histogram(values).quantile(q)
    assert estimate is not None
    assert true <= estimate <= true * LATENCY_RATIO * (1 + 1e-12)


def test_quantile_edge_cases() -> None:
    histogram = LatencyHistogram()
    assert histogram.quantile(0.99) is None
    histogram.record(1e-9)
    assert histogram.quantile(0.5) == pytest.approx(50e-6)
    histogram.record(3600.0)
    assert histogram.quantile(1.0) == math.inf
    with pytest.raises(ValueError, match="quantile"):
        histogram.quantile(1.5)


def test_merged_latency_histograms_equal_one_histogram_of_the_union() -> None:
    a, b = latencies(seed=2, n=3000), latencies(seed=3, n=5000)
    merged = latency_histogram(a)
    merged.merge(latency_histogram(b))
    union = latency_histogram(np.concatenate([a, b]))
    assert merged == union
    assert merged.count == 8000
    assert merged.quantile(0.99) == union.quantile(0.99)


def test_latency_histogram_json_roundtrip() -> None:
    histogram = latency_histogram(latencies(seed=4, n=1000))
    histogram.record(1e4)
    data = histogram.to_json()
    assert all(isinstance(key, str) for key in data)
    assert LatencyHistogram.from_json(roundtrip(data)) == histogram  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [{"-1": 1}, {"100000": 1}, {"3": -2}])
def test_latency_histogram_rejects_what_it_cannot_have_written(data: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="not a latency histogram"):
        LatencyHistogram.from_json(data)


# --- predictions -----------------------------------------------------------------------------


def test_labels_are_counted_and_the_long_tail_goes_to_other() -> None:
    histogram = PredictionHistogram()
    histogram.record(np.array(["setosa", "virginica", "setosa"]))
    histogram.record(np.array([True, False]))
    assert histogram.to_json() == {
        "label:False": 1,
        "label:True": 1,
        "label:setosa": 2,
        "label:virginica": 1,
    }
    ids = PredictionHistogram()
    ids.record(np.arange(100))
    assert len(ids.bins) == MAX_PREDICTION_BINS
    assert ids.other == 100 - MAX_PREDICTION_BINS
    assert ids.count == 100


def test_mixed_object_labels_are_counted() -> None:
    histogram = PredictionHistogram()
    histogram.record(np.array(["a", 1, None, "a"], dtype=object))
    assert histogram.to_json() == {"label:1": 1, "label:None": 1, "label:a": 2}


def test_scores_fall_in_fixed_bins_that_depend_on_the_value_alone() -> None:
    histogram = PredictionHistogram()
    values = [0.05, 0.95, 1.0, -0.0, 2.0, 20.0, -3.0, -0.002, math.nan, math.inf, -math.inf]
    histogram.record(np.array(values))
    assert histogram.to_json() == {
        "score:+10^0.25": 1,
        "score:+10^1.25": 1,
        "score:+inf": 1,
        "score:-10^-2.75": 1,
        "score:-10^0.25": 1,
        "score:-inf": 1,
        "score:0.0": 2,
        "score:0.9": 2,
        "score:nan": 1,
    }


def test_replicas_bin_scores_alike_so_merged_histograms_equal_the_union() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 100, 2000), rng.uniform(0, 1, 3000).astype(np.float32)
    merged, other, union = PredictionHistogram(), PredictionHistogram(), PredictionHistogram()
    merged.record(a)
    other.record(b)
    merged.merge(other)
    union.record(np.concatenate([a, b.astype(np.float64)]))
    assert merged == union


def test_prediction_histogram_json_roundtrip() -> None:
    histogram = PredictionHistogram()
    histogram.record(np.arange(80))
    histogram.record(np.array([0.5, -7.0]))
    restored = PredictionHistogram.from_json(roundtrip(histogram.to_json()))  # type: ignore[arg-type]
    assert restored == histogram
    assert restored.other == 18


def test_psi_is_near_zero_for_one_distribution_and_large_for_a_shifted_one() -> None:
    rng = np.random.default_rng(6)
    first, second, shifted = PredictionHistogram(), PredictionHistogram(), PredictionHistogram()
    first.record(rng.uniform(0, 1, 20_000))
    second.record(rng.uniform(0, 1, 20_000))
    shifted.record(rng.beta(5, 2, 20_000))
    assert psi(first, first) == pytest.approx(0.0)
    assert psi(first, second) == pytest.approx(0.0, abs=0.01)
    shift = psi(first, shifted)
    assert shift is not None
    assert shift > 0.25


def test_psi_of_labels_and_of_an_empty_side() -> None:
    usual, odd = PredictionHistogram(), PredictionHistogram()
    usual.record(np.array(["cat"] * 900 + ["dog"] * 100))
    odd.record(np.array(["cat"] * 500 + ["dog"] * 400 + ["bird"] * 100))
    shift = psi(usual, odd)
    assert shift is not None
    assert shift > 0.5
    assert psi(usual, PredictionHistogram()) is None
    assert psi(PredictionHistogram(), usual) is None


# --- shadow comparison -----------------------------------------------------------------------


def test_labels_disagree_when_unequal() -> None:
    primary: Outputs = {"label": np.array(["a", "b", "c"])}
    assert compare_outputs(primary, {"label": np.array(["a", "x", "c"])}) == Comparison(
        rows=3, disagreed=1, abs_diff_sum=0.0, abs_diff_max=0.0
    )
    ints: Outputs = {"label": np.array([1, 2, 3])}
    assert compare_outputs(ints, {"label": np.array([1.0, 2.0, 4.0])}).disagreed == 1
    assert compare_outputs(ints, {"label": np.array(["1", "2", "3"])}).disagreed == 3


def test_probabilities_disagree_on_argmax_and_add_their_differences() -> None:
    primary = {"probabilities": np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])}
    shadow = {"probabilities": np.array([[0.6, 0.4], [0.6, 0.4], [0.5, 0.5]])}
    comparison = compare_outputs(primary, shadow)
    assert (comparison.rows, comparison.disagreed) == (3, 1)
    assert comparison.abs_diff_sum == pytest.approx(0.2 + 0.4)
    assert comparison.abs_diff_max == pytest.approx(0.2)


def test_scores_disagree_beyond_a_relative_tolerance() -> None:
    primary = {"value": np.array([100.0, 100.0, 0.0, 0.0])}
    shadow = {"value": np.array([100.05, 100.2, 5e-7, 1e-5])}
    comparison = compare_outputs(primary, shadow)
    assert comparison.disagreed == 2
    assert comparison.abs_diff_max == pytest.approx(0.2)
    column = {"value": np.array([[1.0], [2.0]])}  # (n, 1) is a score, not probabilities
    assert compare_outputs(column, {"value": np.array([[1.0], [3.0]])}).disagreed == 1


def test_nan_agrees_with_nan_only() -> None:
    primary = {"value": np.array([math.nan, math.nan, 1.0, math.inf])}
    shadow = {"value": np.array([math.nan, 1.0, 1.0, math.inf])}
    comparison = compare_outputs(primary, shadow)
    assert comparison.disagreed == 1
    assert (comparison.abs_diff_sum, comparison.abs_diff_max) == (0.0, 0.0)
    nan_rows = {"probabilities": np.full((2, 3), math.nan)}
    assert compare_outputs(nan_rows, {"probabilities": np.full((2, 3), math.nan)}).disagreed == 0


def test_only_common_outputs_count_and_a_row_disagrees_if_any_does() -> None:
    primary = {"label": np.array([0, 1]), "value": np.array([1.0, 2.0])}
    shadow = {"label": np.array([1, 1]), "value": np.array([1.0, 9.0]), "extra": np.zeros(2)}
    assert compare_outputs(primary, shadow).disagreed == 2


def test_a_shadow_answering_something_else_disagrees_on_every_row() -> None:
    primary = {"label": np.array([0, 1, 2])}
    assert compare_outputs(primary, {"label": np.array([0, 1])}).disagreed == 3
    assert compare_outputs(primary, {"other": np.array([0, 1, 2])}).disagreed == 3
    probabilities = {"probabilities": np.zeros((3, 2))}
    assert compare_outputs(probabilities, {"probabilities": np.zeros((3, 4))}).disagreed == 3
    assert compare_outputs({}, primary) == Comparison(0, 0, 0.0, 0.0)


def test_zero_rows_compare_and_count_as_nothing() -> None:
    empty = {"label": np.array([], dtype=np.int64), "probabilities": np.zeros((0, 3))}
    assert compare_outputs(empty, empty) == Comparison(0, 0, 0.0, 0.0)
    window = SlotWindow()
    window.served(200, 0.01, empty)
    assert (window.requests, window.predictions.count) == (1, 0)


# --- slot windows ----------------------------------------------------------------------------


def served(
    requests: int,
    *,
    errors: int = 0,
    seconds: float = 0.01,
    outputs: Outputs | None = None,
) -> SlotWindow:
    """A window of `requests`, the first `errors` of them answered 500."""
    window = SlotWindow()
    for i in range(requests):
        window.served(500 if i < errors else 200, seconds, None if i < errors else outputs)
    return window


def test_a_window_counts_what_its_slot_served() -> None:
    window = SlotWindow()
    assert window.empty
    assert (window.error_rate, window.p99_s, window.disagreement_rate) == (None, None, None)
    window.served(200, 0.010, {"label": np.array(["a", "b"]), "probabilities": np.ones((2, 2))})
    window.served(422, 0.001, None)
    window.served(503, 0.500, None)
    assert not window.empty
    assert window.error_rate == pytest.approx(1 / 3)
    assert window.p99_s == pytest.approx(0.5, rel=LATENCY_RATIO - 1)
    assert window.predictions.to_json() == {"label:a": 1, "label:b": 1}
    window.served(200, 0.01, {"probabilities": np.array([[0.2, 0.8]])})
    assert window.predictions.to_json()["score:0.2"] == 1  # first column of a 2-D output


def test_predictions_of_differing_shapes_are_binned_by_their_first_column() -> None:
    window = SlotWindow()
    window.served(200, 0.01, {"scores": np.array([[0.15, 0.9], [0.85, 0.1]])})
    window.served(200, 0.01, {"scores": np.array([[0.55, 0.2, 0.25]])})
    window.served(200, 0.01, {"scores": np.array([[[0.35]], [[0.95]]])})
    window.served(200, 0.01, {"scores": np.array([[0.16, 0.5]])})
    assert window.predictions.to_json() == {
        "score:0.1": 2,
        "score:0.3": 1,
        "score:0.5": 1,
        "score:0.8": 1,
        "score:0.9": 1,
    }


def test_a_window_counts_mirrored_rows_and_failed_mirrors() -> None:
    window = SlotWindow()
    window.mirrored(Comparison(rows=8, disagreed=1, abs_diff_sum=0.4, abs_diff_max=0.3))
    window.mirror_failed()
    assert window.requests == 0
    assert not window.empty
    assert window.disagreement_rate == pytest.approx(2 / 9)
    assert window.mean_abs_diff == pytest.approx(0.05)


def test_requests_served_at_once_count_like_requests_served_one_by_one() -> None:
    one_by_one = served(5, seconds=0.2)
    one_by_one.mirror_failed()
    one_by_one.mirror_failed()
    at_once = SlotWindow()
    at_once.served_at_once(5, 0.2)
    at_once.mirror_failed(2)
    assert at_once.to_json() == one_by_one.to_json()
    assert at_once.p99_s == pytest.approx(0.2, rel=LATENCY_RATIO - 1)


def full_window() -> SlotWindow:
    window = served(30, errors=2, outputs={"value": np.linspace(-5, 5, 7)})
    window.mirrored(Comparison(rows=7, disagreed=2, abs_diff_sum=1.5, abs_diff_max=0.75))
    window.mirror_failed()
    return window


def test_windows_merge_like_replicas_rows_summed_by_the_controller() -> None:
    total = full_window()
    total.merge(full_window())
    assert (total.requests, total.errors, total.compared, total.disagreed) == (60, 4, 14, 4)
    assert (total.abs_diff_sum, total.abs_diff_max, total.shadow_failures) == (3.0, 0.75, 2)
    assert total.latency.count == 60
    assert total.predictions.count == 2 * 28 * 7


def test_window_json_roundtrip_is_stable() -> None:
    window = full_window()
    data = window.to_json()
    assert json.dumps(data, sort_keys=True) == json.dumps(full_window().to_json(), sort_keys=True)
    assert SlotWindow.from_json(roundtrip(data)) == window  # type: ignore[arg-type]
    assert SlotWindow.from_json({}) == SlotWindow()


# --- gates -----------------------------------------------------------------------------------


def judge(
    limits: GateLimits,
    canary: SlotWindow,
    *,
    primary: SlotWindow | None = None,
    shadow: SlotWindow | None = None,
    min_requests: int = 100,
) -> Evaluation:
    return evaluate(
        limits,
        primary=primary if primary is not None else served(200),
        canary=canary,
        shadow=shadow,
        min_requests=min_requests,
    )


ERRORS = GateLimits(max_error_rate=0.05)


def test_a_small_sample_waits() -> None:
    evaluation = judge(ERRORS, served(12))
    assert evaluation.verdict is Verdict.WAIT
    assert evaluation.reasons == ("canary served 12 of the 100 requests needed",)
    assert evaluation.figures["canary_requests"] == 12


def test_one_error_in_two_requests_waits() -> None:
    assert judge(ERRORS, served(2, errors=1)).verdict is Verdict.WAIT
    assert judge(ERRORS, served(2, errors=1), min_requests=10).verdict is Verdict.WAIT


@pytest.mark.parametrize("min_requests", [100, 1000])
def test_a_broken_canary_with_a_fifth_of_errors_breaches_within_fifty_requests(
    min_requests: int,
) -> None:
    canary = SlotWindow()
    for i in range(50):
        canary.served(500 if i % 5 == 0 else 200, 0.01, None)
    evaluation = judge(ERRORS, canary, min_requests=min_requests)
    assert evaluation.verdict is Verdict.BREACH
    assert evaluation.reasons == ("canary error rate 20.0 % over 50 requests exceeds 5.0 %",)
    assert evaluation.figures["canary_error_rate"] == pytest.approx(0.2)


def test_early_samples_need_confidence_or_certainty() -> None:
    assert EARLY_SAMPLE == 20
    assert judge(ERRORS, served(19, errors=19)).verdict is Verdict.WAIT  # below the sample
    assert judge(ERRORS, served(20, errors=19)).verdict is Verdict.BREACH
    assert judge(ERRORS, served(60, errors=4)).verdict is Verdict.WAIT  # 6.7 %, not yet sure
    assert judge(ERRORS, served(80, errors=6)).verdict is Verdict.BREACH  # > 5 of 100: certain


def test_at_min_requests_the_observed_error_rate_decides() -> None:
    assert judge(ERRORS, served(100, errors=6)).verdict is Verdict.BREACH
    passed = judge(ERRORS, served(100, errors=5))
    assert passed == Evaluation(Verdict.PASS, (), passed.figures)


def test_p99_gate() -> None:
    limits = GateLimits(max_p99_ms=250)
    assert judge(limits, served(100, seconds=0.2)).verdict is Verdict.PASS
    slow = judge(limits, served(100, seconds=0.3))
    assert slow.verdict is Verdict.BREACH
    assert re.fullmatch(r"canary p99 3[01]\d\.\d ms exceeds 250 ms", slow.reasons[0])
    assert judge(limits, served(99, seconds=0.3)).verdict is Verdict.WAIT


def test_p99_increase_gate_compares_with_the_primary() -> None:
    limits = GateLimits(max_p99_increase=0.2)
    primary = served(100, seconds=0.1)
    assert judge(limits, served(100, seconds=0.11), primary=primary).verdict is Verdict.PASS
    slow = judge(limits, served(100, seconds=0.15), primary=primary)
    assert slow.verdict is Verdict.BREACH
    assert "above the primary's" in slow.reasons[0]
    assert slow.figures["primary_p99_ms"] == pytest.approx(100, rel=LATENCY_RATIO - 1)


def test_p99_increase_is_not_judged_without_a_primary_sample() -> None:
    limits = GateLimits(max_p99_increase=0.2)
    evaluation = judge(limits, served(100, seconds=5.0), primary=served(3))
    assert evaluation.verdict is Verdict.PASS
    assert evaluation.reasons == ("p99 increase not judged: primary served 3 requests",)


def test_shadow_disagreement_gate() -> None:
    limits = GateLimits(max_shadow_disagreement=0.01)
    canary = served(100)

    def shadow(rows: int, disagreed: int, failures: int = 0) -> SlotWindow:
        window = SlotWindow()
        window.mirrored(Comparison(rows, disagreed, 0.0, 0.0))
        for _ in range(failures):
            window.mirror_failed()
        return window

    assert judge(limits, canary, shadow=shadow(1000, 5)).verdict is Verdict.PASS
    breach = judge(limits, canary, shadow=shadow(1000, 30))
    assert breach.reasons == ("shadow disagrees on 3.0 % of 1000 mirrored rows, over 1.0 %",)
    assert judge(limits, canary, shadow=shadow(50, 0)).verdict is Verdict.WAIT
    assert judge(limits, canary, shadow=shadow(50, 25)).verdict is Verdict.BREACH
    assert judge(limits, canary, shadow=shadow(990, 0, failures=20)).verdict is Verdict.BREACH
    assert judge(limits, canary).verdict is Verdict.PASS  # no shadow slot: nothing to judge


def classes(share_b: float, requests: int = 100, rows: int = 10) -> SlotWindow:
    """A classifier's window: each request answers `rows` labels, `share_b` of them "b"."""
    n_b = round(share_b * rows)
    return served(requests, outputs={"label": np.array(["b"] * n_b + ["a"] * (rows - n_b))})


def test_drift_gate() -> None:
    limits = GateLimits(max_prediction_drift=0.2)
    primary = classes(0.2)
    assert primary.predictions.count >= DRIFT_MIN_ROWS
    assert judge(limits, classes(0.2), primary=primary).verdict is Verdict.PASS
    drifted = judge(limits, classes(0.6), primary=primary)
    assert drifted.verdict is Verdict.BREACH
    assert drifted.reasons[0].startswith("prediction drift (PSI) 0.")
    drift = drifted.figures["prediction_drift"]
    assert drift is not None
    assert drift > 0.2


def test_drift_waits_for_canary_rows_and_skips_a_primary_without_them() -> None:
    limits = GateLimits(max_prediction_drift=0.2)
    few_rows = judge(limits, classes(0.6, rows=1), primary=classes(0.2))
    assert few_rows.verdict is Verdict.WAIT
    assert "predictions needed to judge drift" in few_rows.reasons[0]
    unjudged = judge(limits, classes(0.6), primary=classes(0.2, requests=10))
    assert unjudged.verdict is Verdict.PASS
    assert unjudged.reasons[0].startswith("prediction drift not judged")


def test_every_breach_is_reported_and_breach_wins_over_wait() -> None:
    limits = GateLimits(max_error_rate=0.05, max_p99_ms=1.0, max_shadow_disagreement=0.01)
    shadow = SlotWindow()
    shadow.mirrored(Comparison(10, 0, 0.0, 0.0))
    evaluation = judge(limits, served(100, errors=50, seconds=0.5), shadow=shadow)
    assert evaluation.verdict is Verdict.BREACH
    assert len(evaluation.reasons) == 2


def test_min_requests_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_requests"):
        judge(ERRORS, served(1), min_requests=0)
