"""`register --reference`, `reference set|show` as a user runs them: Parquet and CSV files,
the audit entry, a reference the model cannot take, and a sample changed behind our back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline

from modelport.config import Settings


def test_register_with_a_reference_then_replace_and_show(
    cli: Any, settings: Settings, tmp_path: Path, mixed_pipeline: Pipeline, mixed_frame: Any
) -> None:
    frame, _ = mixed_frame
    model = tmp_path / "mixed.skops"
    sio.dump(mixed_pipeline, model)
    sample, reference = tmp_path / "sample.csv", tmp_path / "reference.parquet"
    frame.head(10).to_csv(sample, index=False)
    frame.to_parquet(reference)

    registered = cli(
        "register", "mixed", str(model), "--sample", str(sample), "--reference", str(reference)
    )
    assert registered.returncode == 0, registered.stderr
    shown = cli("reference", "show", "mixed/1", "--json")
    assert shown.returncode == 0, shown.stderr
    profile = json.loads(shown.stdout)
    assert profile["rows"] == len(frame)
    assert profile["features"]["city"]["kind"] == "categorical"
    assert profile["features"]["income"]["kind"] == "numeric"
    assert sum(profile["predictions"]["counts"].values()) == len(frame)

    smaller = tmp_path / "smaller.csv"
    frame.head(50).to_csv(smaller, index=False)
    replaced = cli("reference", "set", "mixed/1", str(smaller))
    assert replaced.returncode == 0, replaced.stderr
    assert "50 rows" in replaced.stdout
    audit = cli("audit", "--action", "version.reference", "--json")
    assert [e["target"] for e in json.loads(audit.stdout)] == ["mixed/1", "mixed/1"]

    # a reference the model cannot take fails the registration: no version 2 appears
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"age": ["old"], "income": [1.0], "city": ["x"], "member": ["y"]}).to_csv(
        wrong, index=False
    )
    refused = cli(
        "register", "mixed", str(model), "--sample", str(sample), "--reference", str(wrong)
    )
    assert refused.returncode == 1
    assert "error:" in refused.stderr
    assert json.loads(cli("versions", "mixed", "--json").stdout)[-1]["version"] == 1

    # the stored sample changed outside modelport: reading it says so
    with sqlite3.connect(settings.home / "modelport.db") as db:
        db.execute("UPDATE reference_profiles SET sample = x'00'")
    tampered = cli("reference", "show", "mixed/1")
    assert tampered.returncode == 1
    assert "SHA-256" in tampered.stderr

    none = cli("reference", "show", "nope/1")
    assert none.returncode == 1
