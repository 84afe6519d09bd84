"""A skops file that would inflate to far more than it weighs is refused from its zip directory."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import ModelLoadError
from modelport.registry import Registry, prepare_file, prepare_object
from modelport.runtimes.archives import check_zip_sizes

_ZEROS_MIB = 128


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory, iris_logreg: LogisticRegression) -> Path:
    """A real skops file of the iris model plus a member holding 128 MiB of zeros, written
    in 1 MiB pieces so neither this test's memory nor the file (~130 KB) grows with it."""
    path = tmp_path_factory.mktemp("bomb") / "model.skops"
    sio.dump(iris_logreg, path)
    chunk = bytes(1 << 20)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.npy", "w", force_zip64=True) as member,
    ):
        for _ in range(_ZEROS_MIB):
            member.write(chunk)
    assert path.stat().st_size < 1024**2
    return path


def test_preparation_refuses_a_zip_bomb_before_skops_reads_it(
    bomb: Path, registry: Registry, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = iris_data
    with (
        pytest.raises(ModelLoadError, match="zip bomb") as caught,
        prepare_file(bomb, X[:5], name="iris"),
    ):
        pass
    assert "'zeros.npy'" in caught.value.detail
    assert caught.value.status == 422
    assert registry.list_models() == []


def test_a_stored_zip_bomb_is_refused_on_load(
    bomb: Path,
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    """A version stored before the check existed: its hashes match, its archive is a bomb."""
    X, _ = iris_data
    with prepare_object(iris_logreg, X[:5], name="iris") as prepared:
        shutil.copyfile(bomb, prepared.directory / "model.skops")
        registry.register("iris", prepared)
    with pytest.raises(ModelLoadError, match="zip bomb"):
        modelport.load_model("iris", settings=settings)


def test_the_total_size_cap_counts_every_member(
    bomb: Path, tmp_path: Path, iris_logreg: LogisticRegression
) -> None:
    with pytest.raises(ModelLoadError, match="inflate to more than"):
        check_zip_sizes(bomb, max_total_bytes=(_ZEROS_MIB - 1) * 1024**2, max_ratio=10**6)
    honest = tmp_path / "model.skops"
    sio.dump(iris_logreg, honest, compression=zipfile.ZIP_DEFLATED)
    check_zip_sizes(honest)
