"""The mSPRT: its p-value path against the formula computed look by look, and the reason it
exists, shown on simulated A/A streams: peeking at a t-test every day finds an effect that is
not there far more often than alpha, the always-valid p-value does not."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from modelport.errors import InvalidInputError
from modelport.experiments.analysis import SequentialResult, mixing_variance, msprt
from modelport.experiments.analysis.sequential import BURN_IN

ALPHA = 0.05
STREAMS, DAYS, PER_DAY = 1000, 20, 50
"""1,000 A/A experiments of 20 days with 50 units a day per group: 1,000 pairs each."""


def _looked_up_one_by_one(a: np.ndarray, b: np.ndarray, tau2: float) -> list[float]:
    """The always-valid p after each pair, straight from the definition."""
    p, path = 1.0, []
    for n in range(1, min(a.size, b.size) + 1):
        d = b[:n] - a[:n]
        if n >= BURN_IN and np.ptp(d) > 0:
            s2 = float(np.var(d, ddof=1))
            mean = float(d.mean())
            lam = math.sqrt(s2 / (s2 + n * tau2)) * math.exp(
                n**2 * tau2 * mean**2 / (2 * s2 * (s2 + n * tau2))
            )
            p = min(p, 1.0 / lam, 1.0)
        path.append(p)
    return path


def test_p_path_is_the_running_minimum_of_one_over_lambda() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(100.0, 3.0, 400), rng.normal(100.6, 3.0, 430)  # a large common offset
    result = msprt(a, b, tau2=0.25)
    expected = _looked_up_one_by_one(a, b, 0.25)
    assert result.n == 400
    assert result.p_values.size == 400
    assert result.p_values == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert np.all(result.p_values[: BURN_IN - 1] == 1.0)
    assert np.all(np.diff(result.p_values) <= 0.0)
    assert result.p_value == result.p_values[-1]
    d = b[:400] - a[:400]
    assert result.estimate == pytest.approx(d.mean(), rel=1e-9)
    assert result.variance == pytest.approx(np.var(d, ddof=1), rel=1e-9)
    assert result.rejected
    assert result.crossed_at is not None
    assert result.p_values[result.crossed_at - 1] <= ALPHA < result.p_values[result.crossed_at - 2]


def test_confidence_sequence_excludes_zero_exactly_when_rejected() -> None:
    rng = np.random.default_rng(2)
    for effect in (0.0, 0.05, 0.1, 0.2, 0.4):
        result = msprt(rng.normal(0, 1, 600), rng.normal(effect, 1, 600), tau2=0.04)
        assert result.ci_low <= result.estimate <= result.ci_high
        assert (not result.ci_low <= 0.0 <= result.ci_high) == result.rejected, effect


def test_always_valid_interval_covers_the_true_effect_at_every_look() -> None:
    rng = np.random.default_rng(3)
    effect, misses = 0.1, 0
    for _ in range(300):
        result = msprt(rng.normal(0, 1, 800), rng.normal(effect, 1, 800), tau2=0.01)
        misses += not result.ci_low <= effect <= result.ci_high
    # the sequence is the intersection of every look: a miss at any look is a miss here
    assert misses / 300 <= ALPHA + 0.02


def _daily_welch_p_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Welch's p-value of every stream after each day (streams x days), vectorised."""
    ends = np.arange(PER_DAY, DAYS * PER_DAY + 1, PER_DAY)
    n = ends.astype(float)
    mean_a, mean_b = np.cumsum(a, axis=1)[:, ends - 1] / n, np.cumsum(b, axis=1)[:, ends - 1] / n
    var_a = (np.cumsum(a**2, axis=1)[:, ends - 1] - n * mean_a**2) / (n - 1)
    var_b = (np.cumsum(b**2, axis=1)[:, ends - 1] - n * mean_b**2) / (n - 1)
    se2 = var_a / n + var_b / n
    df = se2**2 / ((var_a / n) ** 2 / (n - 1) + (var_b / n) ** 2 / (n - 1))
    return np.asarray(2.0 * stats.t.sf(np.abs(mean_b - mean_a) / np.sqrt(se2), df))


def test_peeking_inflates_the_t_test_but_not_the_always_valid_p_value() -> None:
    rng = np.random.default_rng(20261206)
    a = rng.normal(10.0, 2.0, (STREAMS, DAYS * PER_DAY))
    b = rng.normal(10.0, 2.0, (STREAMS, DAYS * PER_DAY))  # A/A: no effect anywhere
    daily = _daily_welch_p_values(a, b)
    assert daily[0, 0] == pytest.approx(
        stats.ttest_ind(b[0, :PER_DAY], a[0, :PER_DAY], equal_var=False).pvalue, rel=1e-9
    )
    peeking = float(np.mean((daily < ALPHA).any(axis=1)))
    once = float(np.mean(daily[:, -1] < ALPHA))
    tau2 = mixing_variance(0.2)  # an MDE of 0.1 sd of the metric, 0.2 in its units
    sequential = float(np.mean([msprt(a[i], b[i], tau2=tau2).rejected for i in range(STREAMS)]))
    # 20 looks at a 5 % test stop wrongly about a quarter of the time; one look at the end
    # keeps 5 %. The mSPRT looks after every one of the 1,000 pairs and stays at alpha:
    # 0.01 of tolerance is 1.5 standard errors of a 5 % rate over 1,000 streams.
    assert peeking > 3 * ALPHA
    assert abs(once - ALPHA) < 0.02
    assert sequential <= ALPHA + 0.01


def test_a_real_effect_is_found_and_found_early() -> None:
    rng = np.random.default_rng(4)
    effect, found, stops = 0.2, 0, []
    for _ in range(200):
        result = msprt(rng.normal(0, 1, 1000), rng.normal(effect, 1, 1000), tau2=effect**2)
        if result.rejected:
            found += 1
            assert result.crossed_at is not None
            stops.append(result.crossed_at)
    # a fixed test of 1,000 pairs has 99.9 % power here; the mSPRT pays for looking always
    assert found / 200 > 0.9
    assert float(np.median(stops)) < 600


def test_pairs_follow_arrival_order_and_the_shorter_stream() -> None:
    a = [1.0, 2.0, 3.0, 4.0] * 5
    b = [2.0, 2.5, 3.0, 6.0] * 5 + [100.0, 100.0]
    result = msprt(a, b, tau2=1.0)
    assert result.n == 20
    assert result.estimate == pytest.approx(np.mean(np.array(b[:20]) - np.array(a)))


def test_too_few_pairs_give_p_one_and_an_unbounded_interval() -> None:
    result = msprt([1.0, 2.0, 3.0], [2.0, 4.0, 3.5, 9.0], tau2=1.0)
    assert (result.p_value, result.rejected, result.crossed_at) == (1.0, False, None)
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    empty = msprt([], [], tau2=1.0)
    assert empty.n == 0
    assert math.isnan(empty.estimate)
    assert empty.p_value == 1.0
    data = json.loads(json.dumps(empty.to_dict(), allow_nan=False))
    assert data["estimate"] is None
    assert data["ci_low"] is None
    assert "p_values" not in data


def test_equal_differences_leave_the_p_value_where_it_was() -> None:
    result = msprt(np.zeros(50), np.full(50, 0.1), tau2=1.0)  # every difference 0.1
    assert result.p_value == 1.0
    assert result.variance == 0.0


def test_result_path_is_read_only_and_left_out_of_equality() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 30), rng.normal(0, 1, 30)
    result = msprt(a, b, tau2=1.0)
    with pytest.raises(ValueError, match="read-only"):
        result.p_values[0] = 0.0
    assert isinstance(result, SequentialResult)
    assert result == msprt(a, b, tau2=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tau2": 0.0}, "tau2 must be a positive number"),
        ({"tau2": math.inf}, "tau2 must be a positive number"),
        ({"tau2": 1.0, "alpha": 1.5}, "alpha must be strictly between 0 and 1"),
    ],
)
def test_bad_parameters_are_invalid_input(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        msprt([1.0, 2.0], [1.0, 2.0], **kwargs)


def test_mixing_variance_is_the_squared_mde() -> None:
    assert mixing_variance(-0.3) == pytest.approx(0.09)
    with pytest.raises(InvalidInputError, match="mde must be a finite number other than 0"):
        mixing_variance(0.0)
