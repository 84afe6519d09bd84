"""The experiment statistics against statsmodels, scipy and hand computations on the same data,
their coverage in simulation, and what degenerate input gives."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from modelport.errors import InvalidInputError
from modelport.experiments.analysis import (
    Comparison,
    benjamini_hochberg,
    bootstrap_difference,
    cuped,
    holm,
    means_power,
    means_sample_size,
    proportions_lift,
    proportions_power,
    proportions_sample_size,
    proportions_test,
    relative_lift,
    sample_ratio_mismatch,
    welch_test,
)
from modelport.experiments.analysis.bootstrap import batch_size

TOL = {"rel": 1e-6, "abs": 1e-6}
COUNTS = [(480, 5000, 540, 5000), (130, 1200, 101, 1350), (7, 40, 15, 52), (0, 30, 4, 25)]
"""(successes_a, n_a, successes_b, n_b): equal and unequal groups, B above and below A, a 0."""


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261206)
    return rng.lognormal(2.0, 0.6, 300), rng.lognormal(2.1, 0.8, 240)


def _json(data: object) -> object:
    return json.loads(json.dumps(data, allow_nan=False))


# --- two proportions ---------------------------------------------------------------------


@pytest.mark.parametrize(("x_a", "n_a", "x_b", "n_b"), COUNTS)
def test_proportions_z_test_is_statsmodels_pooled_z_of_b_minus_a(
    x_a: int, n_a: int, x_b: int, n_b: int
) -> None:
    result = proportions_test(x_a, n_a, x_b, n_b)
    z, p = proportions_ztest([x_b, x_a], [n_b, n_a])
    assert result.statistic == pytest.approx(z, **TOL)
    assert result.p_value == pytest.approx(p, **TOL)
    assert result.estimate == pytest.approx(x_b / n_b - x_a / n_a, **TOL)
    assert (result.mean_a, result.mean_b, result.n_a, result.n_b) == (
        x_a / n_a,
        x_b / n_b,
        n_a,
        n_b,
    )
    assert result.df is None


@pytest.mark.parametrize(("x_a", "n_a", "x_b", "n_b"), COUNTS)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_proportions_interval_is_statsmodels_wald_difference(
    x_a: int, n_a: int, x_b: int, n_b: int, alpha: float
) -> None:
    result = proportions_test(x_a, n_a, x_b, n_b, alpha=alpha)
    low, high = confint_proportions_2indep(
        x_b, n_b, x_a, n_a, method="wald", compare="diff", alpha=alpha
    )
    assert (result.ci_low, result.ci_high) == (
        pytest.approx(low, **TOL),
        pytest.approx(high, **TOL),
    )


def test_equal_rates_of_zero_give_no_test_but_no_warning() -> None:
    result = proportions_test(0, 100, 0, 80)
    assert result.estimate == 0.0
    assert math.isnan(result.p_value)
    assert math.isnan(result.statistic)
    assert math.isnan(result.ci_low)
    assert math.isnan(result.ci_high)
    assert not result.significant
    assert _json(result.to_dict())["p_value"] is None  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((5, 0, 1, 10), "n_a"),
        ((11, 10, 1, 10), "successes_a"),
        ((1, 10, -1, 10), "successes_b"),
        ((1, 10, 2.5, 10), "successes_b"),
    ],
)
def test_impossible_counts_are_invalid_input_naming_the_argument(
    args: tuple[int, int, int, int], named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named) as caught:
        proportions_test(*args)
    assert caught.value.pointer == f"/{named}"


# --- Welch -------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_welch_is_scipy_and_its_interval_statsmodels_unequal_variances(
    samples: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    a, b = samples
    result = welch_test(a, b, alpha=alpha)
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, **TOL)
    assert result.p_value == pytest.approx(reference.pvalue, **TOL)
    assert result.df == pytest.approx(reference.df, **TOL)
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=alpha, usevar="unequal"
    )
    assert (result.ci_low, result.ci_high) == (
        pytest.approx(low, **TOL),
        pytest.approx(high, **TOL),
    )
    assert result.estimate == pytest.approx(b.mean() - a.mean(), **TOL)


def test_welch_on_constant_groups_is_nan_not_a_warning() -> None:
    result = welch_test([3.0, 3.0, 3.0], [4.0, 4.0])
    assert result.estimate == 1.0
    assert all(math.isnan(v) for v in (result.p_value, result.statistic, result.ci_low))
    data = _json(result.to_dict())
    assert data["df"] is None
    assert data["p_value"] is None


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([1.0], [1.0, 2.0], "a needs at least 2"),
        ([1.0, 2.0], [], "b needs at least 2"),
        ([1.0, math.nan], [1.0, 2.0], "a holds NaN"),
        ([1.0, 2.0], [1.0, math.inf], "b holds NaN or infinite"),
        ([[1.0, 2.0]], [1.0, 2.0], r"a must be one value per unit"),
        (["x", "y"], [1.0, 2.0], "a must hold numbers"),
    ],
)
def test_unusable_samples_are_invalid_input(a: object, b: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        welch_test(a, b)  # type: ignore[arg-type]


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, math.nan])
def test_alpha_outside_zero_one_is_invalid_input(alpha: float) -> None:
    with pytest.raises(InvalidInputError, match="alpha"):
        welch_test([1.0, 2.0], [2.0, 3.0], alpha=alpha)


# --- relative lift -----------------------------------------------------------------------


def test_lift_of_means_is_the_delta_method_by_hand(samples: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = samples
    result = relative_lift(a, b, alpha=0.1)
    m_a, m_b = a.mean(), b.mean()
    v_a, v_b = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(v_b / m_a**2 + m_b**2 * v_a / m_a**4)
    z = stats.norm.ppf(0.95)
    assert result.estimate == pytest.approx(m_b / m_a - 1, **TOL)
    assert result.low == pytest.approx(m_b / m_a - 1 - z * se, **TOL)
    assert result.high == pytest.approx(m_b / m_a - 1 + z * se, **TOL)


def test_lift_of_proportions_uses_the_binomial_variance() -> None:
    result = proportions_lift(480, 5000, 540, 5000)
    p_a, p_b = 0.096, 0.108
    se = math.sqrt(p_b * (1 - p_b) / 5000 / p_a**2 + p_b**2 * p_a * (1 - p_a) / 5000 / p_a**4)
    half = stats.norm.ppf(0.975) * se
    assert result.estimate == pytest.approx(0.125, **TOL)
    assert (result.low, result.high) == (
        pytest.approx(0.125 - half, **TOL),
        pytest.approx(0.125 + half, **TOL),
    )


def test_lift_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    true_means = (5.0, 5.5)  # a gamma of shape 2, skewed like revenue
    covered_means = []
    for _ in range(1500):
        a = rng.gamma(2.0, true_means[0] / 2.0, 400)
        b = rng.gamma(2.0, true_means[1] / 2.0, 400)
        interval = relative_lift(a, b)
        covered_means.append(interval.low <= 0.1 <= interval.high)
    successes_a = rng.binomial(3000, 0.10, 3000)
    successes_b = rng.binomial(3000, 0.12, 3000)
    covered_rates = []
    for x_a, x_b in zip(successes_a, successes_b, strict=True):
        interval = proportions_lift(int(x_a), 3000, int(x_b), 3000)
        covered_rates.append(interval.low <= 0.2 <= interval.high)
    # 1,500 and 3,000 runs: the standard error of a 95 % coverage is 0.0056 and 0.004
    assert 0.93 <= np.mean(covered_means) <= 0.97
    assert 0.935 <= np.mean(covered_rates) <= 0.965


def test_lift_against_a_zero_control_is_nan() -> None:
    assert math.isnan(relative_lift([0.0, 0.0], [1.0, 2.0]).estimate)
    result = proportions_lift(0, 100, 3, 100)
    assert math.isnan(result.estimate)
    assert math.isnan(result.low)
    assert math.isnan(result.high)
    assert _json(result.to_dict()) == {"estimate": None, "low": None, "high": None}


# --- CUPED -------------------------------------------------------------------------------


@pytest.fixture
def with_covariate() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x_a, x_b = rng.normal(20.0, 4.0, 500), rng.normal(20.0, 4.0, 450)
    y_a = 3.0 + 0.8 * x_a + rng.normal(0.0, 2.0, 500)
    y_b = 3.5 + 0.8 * x_b + rng.normal(0.0, 2.0, 450)
    return y_a, y_b, x_a, x_b


def test_cuped_is_welch_on_values_adjusted_by_hand(
    with_covariate: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y_a, y_b, x_a, x_b = with_covariate
    result = cuped(y_a, y_b, x_a, x_b)
    y, x = np.concatenate((y_a, y_b)), np.concatenate((x_a, x_b))
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
    adjusted_a, adjusted_b = y_a - theta * (x_a - x.mean()), y_b - theta * (x_b - x.mean())
    reference = stats.ttest_ind(adjusted_b, adjusted_a, equal_var=False)
    assert result.theta == pytest.approx(theta, **TOL)
    assert result.comparison.statistic == pytest.approx(reference.statistic, **TOL)
    assert result.comparison.p_value == pytest.approx(reference.pvalue, **TOL)
    assert result.comparison.df == pytest.approx(reference.df, **TOL)
    assert result.comparison.estimate == pytest.approx(adjusted_b.mean() - adjusted_a.mean(), **TOL)
    assert result.comparison.mean_a == pytest.approx(adjusted_a.mean(), **TOL)
    assert result.comparison.mean_b == pytest.approx(adjusted_b.mean(), **TOL)
    assert result.unadjusted == welch_test(y_a, y_b)
    before = y_a.var(ddof=1) / 500 + y_b.var(ddof=1) / 450
    after = adjusted_a.var(ddof=1) / 500 + adjusted_b.var(ddof=1) / 450
    assert result.variance_reduction == pytest.approx(1 - after / before, **TOL)
    # a covariate with correlation ~0.85 removes about rho^2 = 0.72 of the variance
    assert 0.6 < result.variance_reduction < 0.85
    width = result.comparison.ci_high - result.comparison.ci_low
    assert width < 0.6 * (result.unadjusted.ci_high - result.unadjusted.ci_low)


def test_cuped_with_a_constant_covariate_is_the_plain_test() -> None:
    y_a, y_b = [1.0, 2.0, 4.0], [2.0, 3.0, 7.0, 1.0]
    result = cuped(y_a, y_b, [0.1] * 3, [0.1] * 4)
    assert result.theta == 0.0
    assert result.comparison == result.unadjusted
    assert result.variance_reduction == 0.0


def test_cuped_needs_one_covariate_value_per_unit() -> None:
    with pytest.raises(InvalidInputError, match="covariate_b has 2 values for 3") as caught:
        cuped([1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0])
    assert caught.value.pointer == "/covariate_b"


# --- bootstrap ---------------------------------------------------------------------------


def _scipy_bootstrap(
    a: np.ndarray, b: np.ndarray, seed: int, resamples: int, reduce: str, batch: int | None
) -> tuple[float, float]:
    def difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        function = np.mean if reduce == "mean" else np.median
        return np.asarray(function(y, axis=axis) - function(x, axis=axis))

    result = stats.bootstrap(
        (a, b),
        difference,
        method="percentile",
        n_resamples=resamples,
        batch=batch,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_bootstrap_is_scipy_percentile_bootstrap_with_the_same_seed(
    samples: tuple[np.ndarray, np.ndarray], statistic: str
) -> None:
    a, b = samples
    result = bootstrap_difference(a, b, seed=42, resamples=3000, statistic=statistic)
    assert batch_size(a.size, b.size, 3000) == 3000  # one batch: scipy's default
    low, high = _scipy_bootstrap(a, b, 42, 3000, statistic, None)
    assert (result.low, result.high) == (pytest.approx(low, **TOL), pytest.approx(high, **TOL))
    function = np.mean if statistic == "mean" else np.median
    assert result.estimate == pytest.approx(function(b) - function(a), **TOL)
    other_seed = bootstrap_difference(a, b, seed=43, resamples=3000, statistic=statistic)
    assert (other_seed.low, other_seed.high) != (result.low, result.high)


def test_bootstrap_of_large_groups_draws_in_batches_like_scipy() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.exponential(1.0, 50_000), rng.exponential(1.1, 30_000)
    batch = batch_size(a.size, b.size, 200)
    assert batch < 200
    result = bootstrap_difference(a, b, seed=3, resamples=200)
    low, high = _scipy_bootstrap(a, b, 3, 200, "mean", batch)
    assert (result.low, result.high) == (pytest.approx(low, **TOL), pytest.approx(high, **TOL))


def test_bootstrap_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(99)
    covered = []
    for run in range(300):
        a, b = rng.exponential(2.0, 80), rng.exponential(2.5, 60)
        interval = bootstrap_difference(a, b, seed=run, resamples=1000)
        covered.append(interval.low <= 0.5 <= interval.high)
    # percentile intervals of skewed means may run a little short of 95 % at these sizes
    # (0.963 measured); 300 runs: standard error 0.013
    assert 0.89 <= np.mean(covered) <= 0.98


def test_bootstrap_rejects_an_unknown_statistic_and_too_few_resamples() -> None:
    with pytest.raises(InvalidInputError, match="statistic must be one of mean, median"):
        bootstrap_difference([1.0, 2.0], [1.0, 3.0], seed=1, statistic="mode")
    with pytest.raises(InvalidInputError, match="resamples must be at least 2"):
        bootstrap_difference([1.0, 2.0], [1.0, 3.0], seed=1, resamples=1)


# --- sample ratio mismatch ---------------------------------------------------------------


def test_srm_is_scipy_chisquare_against_normalised_weights() -> None:
    counts, weights = [1010, 2120, 6870], [1.0, 2.0, 7.0]
    result = sample_ratio_mismatch(counts, weights)
    expected = np.array(weights) / 10.0 * sum(counts)
    reference = stats.chisquare(counts, expected)
    assert result.chi2 == pytest.approx(reference.statistic, **TOL)
    assert result.p_value == pytest.approx(reference.pvalue, **TOL)
    assert result.df == 2
    assert result.expected == pytest.approx(tuple(expected), **TOL)


def test_srm_fires_on_a_skewed_split_and_not_on_a_fair_one() -> None:
    skewed = sample_ratio_mismatch([5300, 4700], [50, 50])
    assert skewed.mismatch
    assert skewed.p_value < 1e-6
    fair = sample_ratio_mismatch([5030, 4970], [50, 50])
    assert not fair.mismatch
    assert fair.p_value > 0.5
    # 5,150 vs 4,850: p = 0.0027, a mismatch only for a looser threshold
    borderline = [5150, 4850]
    assert not sample_ratio_mismatch(borderline, [1, 1]).mismatch
    assert sample_ratio_mismatch(borderline, [1, 1], threshold=0.01).mismatch


def test_srm_leaves_out_a_variant_planned_at_zero_until_it_gets_units() -> None:
    empty = sample_ratio_mismatch([5030, 4970, 0], [50, 50, 0])
    assert (empty.df, empty.mismatch) == (1, False)
    assert empty.p_value == pytest.approx(stats.chisquare([5030, 4970]).pvalue, **TOL)
    assert empty.expected == (5000.0, 5000.0, 0.0)
    leaked = sample_ratio_mismatch([5030, 4970, 1], [50, 50, 0])
    assert (leaked.chi2, leaked.p_value, leaked.mismatch) == (math.inf, 0.0, True)
    assert _json(leaked.to_dict())["chi2"] is None  # type: ignore[index]


@pytest.mark.parametrize(
    ("counts", "weights", "message"),
    [
        ([10, 20], [1.0, 1.0, 1.0], "2 counts for 3 weights"),
        ([0, 0], [1.0, 1.0], "no units assigned yet"),
        ([10, 20], [1.0, 0.0], "at least two variants with a positive weight"),
        ([10], [1.0], "at least two variants"),
        ([10, 20], [1.0, -1.0], "not negative"),
        ([10, 20], [1.0, math.nan], "finite"),
        ([10, -2], [1.0, 1.0], r"counts\[1\] must be at least 0"),
        ([10, 2.5], [1.0, 1.0], r"counts\[1\] must be a whole number"),
    ],
)
def test_srm_degenerate_inputs_say_what_is_wrong(
    counts: list[int], weights: list[float], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        sample_ratio_mismatch(counts, weights)


# --- multiple testing --------------------------------------------------------------------

P_VALUES = [0.01, 0.04, 0.03, 0.2, 0.001, 0.04, 1.0, 0.5, 0.0125]


@pytest.mark.parametrize(("ours", "method"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_corrections_are_statsmodels_multipletests_in_input_order(
    ours: object, method: str
) -> None:
    rng = np.random.default_rng(3)
    for p_values in (P_VALUES, rng.uniform(0.0, 0.08, 25), rng.uniform(0.0, 1.0, 40)):
        adjusted = ours(p_values)  # type: ignore[operator]
        assert adjusted == pytest.approx(multipletests(p_values, method=method)[1], **TOL)
        assert np.all(adjusted <= 1.0)
        assert np.all(adjusted >= np.asarray(p_values))


def test_corrections_of_nothing_and_of_bad_p_values() -> None:
    assert holm([]).size == 0
    assert benjamini_hochberg([]).size == 0
    with pytest.raises(InvalidInputError, match=r"in \[0, 1\]"):
        holm([0.2, 1.5])
    with pytest.raises(InvalidInputError, match=r"in \[0, 1\]"):
        benjamini_hochberg([0.2, math.nan])


# --- planning ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "mde", "power", "alpha"),
    [
        (0.1, 0.01, 0.8, 0.05),
        (0.05, -0.01, 0.9, 0.05),
        (0.3, 0.05, 0.8, 0.01),
        (0.5, 0.002, 0.8, 0.05),
    ],
)
def test_proportions_sample_size_is_statsmodels_normal_power_rounded_up(
    baseline: float, mde: float, power: float, alpha: float
) -> None:
    result = proportions_sample_size(baseline, mde, power=power, alpha=alpha)
    h = proportion_effectsize(baseline + mde, baseline)
    solved = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0)
    assert result.per_group == math.ceil(solved)
    assert result.total == 2 * result.per_group
    assert result.effect_size == pytest.approx(h, **TOL)
    assert result.achieved_power >= power
    assert proportions_power(baseline, mde, result.per_group - 1, alpha=alpha) < power
    assert result.achieved_power == pytest.approx(
        NormalIndPower().power(h, result.per_group, alpha, ratio=1.0), **TOL
    )


@pytest.mark.parametrize(
    ("sd", "mde", "power", "alpha"),
    [(2.5, 0.3, 0.8, 0.05), (1.0, 1.5, 0.8, 0.05), (1.0, 0.05, 0.9, 0.05), (3.0, -2.0, 0.8, 0.01)],
)
def test_means_sample_sizes_are_statsmodels_normal_and_t_power_rounded_up(
    sd: float, mde: float, power: float, alpha: float
) -> None:
    d = mde / sd
    normal = means_sample_size(sd, mde, power=power, alpha=alpha, method="normal")
    t = means_sample_size(sd, mde, power=power, alpha=alpha)
    normal_solved = NormalIndPower().solve_power(effect_size=d, alpha=alpha, power=power, ratio=1)
    t_solved = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=power, ratio=1)
    assert normal.per_group == math.ceil(normal_solved)
    assert t.per_group == math.ceil(t_solved)
    assert t.per_group >= normal.per_group
    closed = 2 * sd**2 * (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2 / mde**2
    assert normal.per_group == math.ceil(closed)  # the far tail is negligible at these sizes
    assert t.achieved_power == pytest.approx(
        TTestIndPower().power(d, t.per_group, alpha, ratio=1), **TOL
    )
    assert means_power(sd, mde, t.per_group - 1, alpha=alpha) < power <= t.achieved_power


@pytest.mark.parametrize("d", [1e-4, 3.0, 10.0])
def test_extreme_effects_get_the_smallest_size_with_the_power_by_statsmodels(d: float) -> None:
    """A large n (the far tail moves it thousands of units below the closed formula) and a
    tiny one (where scipy's noncentral t gives NaN for the far tail)."""
    t = means_sample_size(1.0, d).per_group
    assert TTestIndPower().power(d, t, 0.05, ratio=1) >= 0.8
    assert t == 2 or TTestIndPower().power(d, t - 1, 0.05, ratio=1) < 0.8
    reference = TTestIndPower().power(d, t + 1, 0.05, ratio=1)
    assert means_power(1.0, d, t + 1) == pytest.approx(reference, **TOL)
    normal = means_sample_size(1.0, d, method="normal").per_group
    assert NormalIndPower().power(d, normal, 0.05, ratio=1) >= 0.8
    assert normal == 1 or NormalIndPower().power(d, normal - 1, 0.05, ratio=1) < 0.8


def test_an_mde_too_small_to_plan_for_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="mde is too small to detect"):
        proportions_sample_size(0.1, 1e-9)
    with pytest.raises(InvalidInputError, match="mde is too small to detect"):
        means_sample_size(1.0, 1e-7)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"baseline": 1.2, "mde": 0.01}, "baseline"),
        ({"baseline": 0.0, "mde": 0.01}, "baseline"),
        ({"baseline": 0.95, "mde": 0.06}, "baseline + mde"),
        ({"baseline": 0.1, "mde": -0.1}, "baseline + mde"),
        ({"baseline": 0.1, "mde": 0.0}, "mde"),
        ({"baseline": 0.1, "mde": 0.01, "power": 1.0}, "power"),
        ({"baseline": 0.1, "mde": 0.01, "alpha": 0.0}, "alpha"),
    ],
)
def test_planning_inputs_are_checked_naming_the_option(
    kwargs: dict[str, float], option: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        proportions_sample_size(**kwargs)  # type: ignore[arg-type]
    assert caught.value.detail.startswith(f"{option} must")


def test_means_planning_needs_a_positive_sd_and_a_known_method() -> None:
    with pytest.raises(InvalidInputError, match=r"^sd must be a positive number"):
        means_sample_size(0.0, 0.3)
    with pytest.raises(InvalidInputError, match="method must be one of normal, t"):
        means_sample_size(1.0, 0.3, method="z")
    with pytest.raises(InvalidInputError, match="n_per_group must be at least 2"):
        means_power(1.0, 0.3, 1)


# --- JSON --------------------------------------------------------------------------------


def test_every_result_is_json_with_the_documented_keys(
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    a, b = samples
    comparison = _json(welch_test(a, b).to_dict())
    assert set(comparison) == set(Comparison.__dataclass_fields__) | {"significant"}  # type: ignore[arg-type]
    assert set(_json(cuped(a, b, a * 0.5, b * 0.5).to_dict())) == {  # type: ignore[arg-type]
        "comparison",
        "unadjusted",
        "theta",
        "variance_reduction",
    }
    assert _json(sample_ratio_mismatch([10, 12], [1, 1]).to_dict())["df"] == 1  # type: ignore[index]
    planned = _json(proportions_sample_size(0.1, 0.01).to_dict())
    assert planned["metric"] == "proportion"
    assert planned["method"] == "normal"
