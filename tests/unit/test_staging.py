"""Staging: the model name is checked before a file is read or an object saved."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.errors import InvalidInputError
from modelport.registry import stage_file, stage_object


class _Touch:
    """A pickle whose loading creates a file: proof of whether staging unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_bad_name_stops_staging_before_a_trusted_pickle_is_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(_Touch(marker)))
    with pytest.raises(InvalidInputError, match="invalid model name") as caught, \
            stage_file(path, np.zeros((1, 2)), name="../escape", trusted=True):
        pass
    assert caught.value.pointer == "/model_name"
    assert not marker.exists()


def test_a_bad_name_stops_staging_before_an_object_is_looked_at() -> None:
    # object() has no flavor: without the name check first this would be a ConfigurationError
    with pytest.raises(InvalidInputError, match="invalid model name"), \
            stage_object(object(), np.zeros((1, 2)), name="bad name!"):
        pass
