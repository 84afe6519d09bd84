"""The isolated child: how each way it can end reaches the caller; what it leaves behind."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.errors import ArtifactError, InvalidInputError, ModelLoadError
from modelport.registry.isolation import ChildLimits, prepare_isolated

LIMITS = ChildLimits(memory_bytes=2 * 1024**3, cpu_s=30, file_bytes=10**6, timeout_s=30)
SAMPLE = [[5.1, 3.5, 1.4, 0.2]]


class _Runs:
    """Unpickles as ``function(argument)``."""

    def __init__(self, function: Callable[[str], Any], argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.function, (self.argument,))


def _file(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(content))
    return path


def test_what_the_model_prints_does_not_disturb_the_answer(
    tmp_path: Path, iris_logreg: LogisticRegression
) -> None:
    load = f"__import__('pickle').loads({pickle.dumps(iris_logreg)!r})"
    code = f"(print('hello from the model'), {load})[1]"
    path = _file(tmp_path, _Runs(eval, code))
    with prepare_isolated(path, SAMPLE, LIMITS, scratch=tmp_path / "scratch") as prepared:
        assert prepared.trusted
        assert prepared.flavor == "sklearn"
        assert prepared.saved.options == {"format": "pickle"}
        assert [o.name for o in prepared.signature.outputs] == ["label", "probabilities"]
        assert sorted(p.name for p in prepared.directory.iterdir()) == [
            "input_example.json",
            "model.joblib",
        ]
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        (_Runs(exec, "raise ValueError('corrupt')"), ModelLoadError, "could not load.*corrupt"),
        (np.arange(3), ModelLoadError, "failed on the sample"),  # no predict_proba / predict
        (_Runs(exec, "import os; os.kill(os.getpid(), 11)"), ArtifactError, "SIGSEGV"),
        (_Runs(exec, "import sys; sys.stderr.write('bye'); sys.exit(3)"), ArtifactError, "bye"),
        (_Runs(exec, "open('big', 'wb').write(b'0' * 2_000_000)"), ModelLoadError, "too large"),
    ],
)
def test_each_way_the_child_fails_is_a_422(
    tmp_path: Path, content: object, error: type[Exception], words: str
) -> None:
    with (
        pytest.raises(error, match=words) as caught,
        prepare_isolated(_file(tmp_path, content), SAMPLE, LIMITS, scratch=tmp_path / "scratch"),
    ):
        pass
    assert caught.value.status == 422  # type: ignore[attr-defined]
    assert list((tmp_path / "scratch").iterdir()) == []


def test_an_input_error_keeps_its_class_and_pointer(tmp_path: Path) -> None:
    path = tmp_path / "model.unknown"
    path.write_bytes(b"anything")
    with pytest.raises(InvalidInputError) as caught, prepare_isolated(path, SAMPLE, LIMITS):
        pass
    assert caught.value.pointer == "/artifact"
