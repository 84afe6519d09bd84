"""The reference profile: what it keeps, how it is stored, and that it compares as the raw
reference would."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from modelport.errors import InvalidInputError
from modelport.monitoring.binning import ColumnSummary, FeatureKind
from modelport.monitoring.profile import (
    ReferenceProfile,
    ReferenceSample,
    capture,
    compare,
)
from modelport.monitoring.statistics import StatisticName, chi2, js, ks, psi, wasserstein

NUMERIC, CATEGORICAL = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL


def table(seed: int, rows: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Three numeric features and a categorical one; `shift` moves `income` only."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows)
    age[rng.random(rows) < 0.02] = np.nan
    colour = rng.choice(np.array(["red", "green", "blue"], dtype=object), rows, p=[0.5, 0.3, 0.2])
    colour[rng.random(rows) < 0.01] = None
    return {
        "age": age,
        "income": rng.lognormal(10, 0.5, rows) * (1 + shift),
        "visits": rng.poisson(3, rows),
        "colour": colour,
    }


def test_kinds_come_from_the_dtypes() -> None:
    profile = capture(
        {
            "x": np.array([1.5, 2.0]),
            "n": np.array([1, 2]),
            "s": np.array(["a", "b"]),
            "o": np.array(["a", None], dtype=object),
            "b": np.array([True, False]),
            "c": np.asarray(pd.Categorical(["a", "b"])),
        },
        np.array([0, 1]),
    )
    kinds = {name: summary.kind for name, summary in profile.features.items()}
    assert kinds == {
        "x": NUMERIC,
        "n": NUMERIC,
        "s": CATEGORICAL,
        "o": CATEGORICAL,
        "b": CATEGORICAL,
        "c": CATEGORICAL,
    }
    assert profile.predictions is not None
    assert profile.predictions.kind is CATEGORICAL  # integer predictions are class labels
    assert profile.predictions.frequencies() == {"0": 1, "1": 1}
    overridden = capture({"n": np.array([1, 2])}, kinds={"n": CATEGORICAL})
    assert overridden.features["n"].frequencies() == {"1": 1, "2": 1}


def test_summaries_cover_every_row() -> None:
    data = table(1, 30_000)
    profile = capture(data, max_sample_rows=1000)
    age = profile.features["age"]
    assert (profile.rows, age.rows) == (30_000, 30_000)
    assert age.missing == int(np.isnan(data["age"]).sum())
    assert age.missing_rate == pytest.approx(0.02, abs=0.005)
    assert np.array_equal(age.edges[1:-1], np.nanquantile(data["age"], np.linspace(0, 1, 11))[1:-1])
    assert sum(age.counts) == 30_000 - age.missing
    colour = profile.features["colour"]
    present = [c for c in data["colour"].tolist() if c is not None]
    assert colour.frequencies() == {c: present.count(c) for c in ("blue", "green", "red")}


def test_the_sample_is_the_same_seeded_rows_of_every_column() -> None:
    rows = 25_000
    ids = np.arange(rows)
    data = {"id": ids, "label": ids.astype(str), "half": ids / 2}
    first = capture(data, ids * 10.0, max_sample_rows=1000)
    again = capture(data, ids * 10.0, max_sample_rows=1000)
    assert first.sample == again.sample
    chosen = first.sample.columns["id"]
    assert chosen.size == 1000
    assert np.unique(chosen).size == 1000
    assert np.all(np.diff(chosen) > 0)  # kept in their original order
    assert first.sample.columns["label"].tolist() == [str(int(i)) for i in chosen]
    assert np.array_equal(first.sample.columns["half"], chosen / 2)
    assert first.sample.predictions is not None
    assert np.array_equal(first.sample.predictions, chosen * 10.0)
    other_seed = capture(data, max_sample_rows=1000, seed=1).sample.columns["id"]
    assert not np.array_equal(other_seed, chosen)


def test_below_the_cap_every_row_is_the_sample() -> None:
    data = table(2, 500)
    profile = capture(data)
    assert profile.sample.rows == 500
    assert np.array_equal(profile.sample.columns["age"], data["age"], equal_nan=True)
    assert profile.sample.columns["colour"].tolist() == data["colour"].tolist()


def round_trip(profile: ReferenceProfile) -> ReferenceProfile:
    stored = json.dumps(profile.to_dict(), allow_nan=False)
    return ReferenceProfile.from_dict(
        json.loads(stored), ReferenceSample.from_bytes(profile.sample.to_bytes())
    )


def test_to_dict_and_bytes_round_trip_exactly() -> None:
    data = table(3, 12_000)
    profile = capture(data, np.random.default_rng(0).random(12_000), max_sample_rows=2000)
    again = round_trip(profile)
    assert again == profile
    assert again.to_dict() == profile.to_dict()
    assert again.sample.columns["colour"].tolist() == profile.sample.columns["colour"].tolist()
    labels = capture(data, np.array(["yes", "no"] * 6000, dtype=object), max_sample_rows=2000)
    assert round_trip(labels) == labels


def test_the_sample_bytes_hold_no_pickle() -> None:
    profile = capture(table(4, 300))
    with np.load(io.BytesIO(profile.sample.to_bytes()), allow_pickle=False) as stored:
        assert all(stored[key].dtype.kind in "fUb" for key in stored)


def test_a_sample_of_another_profile_is_refused() -> None:
    profile = capture(table(5, 300))
    other = capture({"age": table(5, 300)["age"]})
    with pytest.raises(ValueError, match="does not belong"):
        ReferenceProfile.from_dict(profile.to_dict(), other.sample)
    broken = profile.to_dict() | {"rows": "many"}
    with pytest.raises(ValueError, match="not a reference profile"):
        ReferenceProfile.from_dict(broken, profile.sample)
    summary = profile.features["age"].to_dict() | {"counts": [1, 2]}
    with pytest.raises(ValueError, match="not a column summary"):
        ColumnSummary.from_dict(summary)


def test_stored_edges_give_the_statistics_of_the_raw_reference() -> None:
    """Above the cap the sample is a subset, yet PSI, JS and chi-square see every row."""
    reference, current = table(6, 40_000), table(7, 30_000, shift=0.1)
    report = compare(round_trip(capture(reference, max_sample_rows=5000)), current)
    for name in ("age", "income", "visits", "colour"):
        drift = report.features[name]
        assert drift[StatisticName.PSI] == psi(reference[name], current[name])
        assert drift[StatisticName.JS] == js(reference[name], current[name])
    assert report.features["colour"][StatisticName.CHI2] == chi2(
        reference["colour"], current["colour"]
    )


def test_below_the_cap_ks_and_wasserstein_see_the_whole_reference() -> None:
    reference, current = table(8, 800), table(9, 3000, shift=0.2)
    report = compare(capture(reference), current)
    income = report.features["income"]
    assert income[StatisticName.KS] == ks(reference["income"], current["income"])
    assert income[StatisticName.WASSERSTEIN] == wasserstein(reference["income"], current["income"])
    assert (income.method, income.drifted) == (StatisticName.KS, True)


def test_a_shifted_feature_drifts_alone() -> None:
    rng = np.random.default_rng(10)
    profile = capture(table(11, 5000), rng.normal(size=5000))
    calm = compare(profile, table(12, 50_000), rng.normal(size=50_000))
    assert calm.drifted_features == ()
    assert {d.method for d in calm.features.values()} == {"wasserstein", "js"}
    assert calm.predictions is not None
    assert calm.predictions.drifted is False
    assert calm.dataset.drifted is False
    moved = compare(profile, table(13, 50_000, shift=0.3), rng.normal(1.0, size=50_000))
    assert moved.drifted_features == ("income",)
    assert moved.predictions is not None
    assert moved.predictions.drifted is True
    assert (moved.dataset.drifted_features, moved.dataset.drifted) == (1, False)


def test_the_report_is_json_and_names_what_it_could_not_compare() -> None:
    profile = capture(table(14, 2000))
    current = table(15, 1000)
    current["new"] = current.pop("visits")
    current["age"] = np.full(1000, np.nan)
    report = compare(profile, current)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert (data["rows"], data["reference_rows"]) == (1000, 2000)
    assert (data["absent_features"], data["unknown_features"]) == (["visits"], ["new"])
    assert data["features"]["age"]["method"] == "missing_rate"
    assert data["drifted_features"] == ["age"]
    assert data["features"]["income"]["statistics"]["ks"]["p_value"] > 0
    assert data["predictions"] is None
    assert data["dataset"] == {
        "features": 3,
        "drifted_features": 1,
        "share": 1 / 3,
        "threshold": 0.5,
        "drifted": False,
    }


def test_input_a_profile_cannot_read_is_the_callers_fault() -> None:
    with pytest.raises(InvalidInputError, match="differ in length"):
        capture({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(InvalidInputError):
        capture({"when": np.array(["2024-01-01"], dtype="datetime64[D]")})
    profile = capture({"a/b": np.zeros(3)})
    with pytest.raises(InvalidInputError) as caught:
        compare(profile, {"a/b": np.array(["x", "y"], dtype=object)})
    assert caught.value.pointer == "/columns/a~1b"
    with pytest.raises(InvalidInputError, match="predictions have shape"):
        capture({"a": np.zeros(3)}, np.zeros((3, 2)))
