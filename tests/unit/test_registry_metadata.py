"""Version metadata that JSON columns cannot hold is a 422 at registration, for every caller."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import InvalidInputError
from modelport.registry import Registry


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "pointer"),
    [
        ({"tags": "prod"}, "/tags"),
        ({"lineage": ["run-1"]}, "/lineage"),
        ({"params": {"deep": _nested(40)}}, "/params/deep"),
        ({"tags": {"deeper": _nested(5_000)}}, "/tags/deeper"),  # json.dumps: RecursionError
    ],
)
def test_metadata_that_is_not_a_shallow_mapping_is_refused(
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
    metadata: dict[str, Any],
    pointer: str,
) -> None:
    X, _ = iris_data
    with pytest.raises(InvalidInputError) as caught:
        modelport.log_model(iris_logreg, "iris", X[:5], settings=settings, **metadata)
    assert caught.value.pointer == pointer
    assert registry.list_models() == []
