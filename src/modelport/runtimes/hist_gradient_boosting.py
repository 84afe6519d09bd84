"""Small batches through a fitted HistGradientBoosting model, without its per-call cost.

scikit-learn predicts tree by tree: one Cython call and one OpenMP region per tree, ~600 µs
for 100 trees whether the batch holds 1 row or 64. Here all trees are flat node arrays, and
every (row, tree) pair steps one level down per numpy gather: ~10x faster for a few rows.
Big batches keep the estimator, which is faster per row. The layout read here is private to
scikit-learn, so it is checked at load: anything unexpected leaves the model to the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from modelport.runtimes.base import classifier_outputs
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.direct import Features
from modelport.runtimes.signature import Signature

MAX_ROWS = 32
"""Largest batch sent down the flat trees. Steps grow with depth, the estimator's cost with the
tree count: 100 trees of depth 16 (bench/hgb_predict.py) are 2.2x faster at 32 rows, 1.4x at
64; trees of 127 leaves and depth 28 still 1.2x at 32 rows, but 0.8x at 64."""

_NODE_FIELDS = (
    "value",
    "feature_idx",
    "num_threshold",
    "missing_go_to_left",
    "left",
    "right",
    "is_leaf",
    "is_categorical",
)


@dataclass(frozen=True, slots=True)
class _Forest:
    """Every tree's nodes end to end, addressed by branch: node i owns branches 2i (to its
    left child) and 2i + 1 (to its right). A step gathers the split's feature and threshold
    at the node's even branch, adds the comparison to take a side, and gathers there the
    child's even branch: six numpy calls per level for one row. A leaf is its own child on
    both sides, so a row stays at its leaf however many steps the deeper trees still take."""

    feature: np.ndarray  # intp per branch, a node's two alike (0 at leaves: any column will do)
    threshold: np.ndarray  # float64 per branch, a node's two alike: ``x > threshold`` goes right
    nan_right: np.ndarray  # bool per branch, a node's two alike: where a missing value goes
    children: np.ndarray  # intp per branch: the even branch of the child it leads to
    value: np.ndarray  # float64 per node (leaf values carry the learning rate)
    roots: np.ndarray  # even branches: K baseline leaves, then by iteration, class by class
    depth: int  # steps that take every root to its leaf
    per_iteration: int  # K: trees per iteration, one per class for multiclass

    def raw(self, features: np.ndarray) -> np.ndarray:
        """Baseline plus leaf values, added in scikit-learn's order (so the sums are the same
        to the last bit): the baseline is a leaf of its own, and cumsum adds left to right.
        Fortran order, as scikit-learn's own, so the link function sees the same layout."""
        n_rows, n_features = features.shape
        flat = features.ravel()
        branch = np.tile(self.roots, n_rows)
        row_start = None  # one row: its features start at 0
        if n_rows > 1:
            row_start = np.repeat(np.arange(0, n_rows * n_features, n_features), self.roots.size)
        missing = bool(np.isnan(flat).any())
        for _ in range(self.depth):
            column = self.feature[branch]
            if row_start is not None:
                column += row_start
            x = flat[column]
            right = x > self.threshold[branch]  # NaN compares false: goes left unless told
            if missing:
                right |= np.isnan(x) & self.nan_right[branch]
            branch += right
            branch = self.children[branch]
        values = self.value[branch >> 1].reshape(n_rows, -1, self.per_iteration)
        return np.asfortranarray(np.cumsum(values, axis=1)[:, -1])


class SmallBatchPredictor:
    """Answers batches of 1 to ``max_rows`` numeric rows as the estimator would."""

    def __init__(self, model: Any, forest: _Forest, features: Features, max_rows: int) -> None:
        self._model = model
        self._forest = forest
        self._features = features
        self._max_rows = max_rows
        self._classes = getattr(model, "classes_", None)

    def predict(self, batch: Batch) -> Outputs | None:
        """The model's outputs, or None when the estimator should answer (big batch, empty
        batch, or features it would convert or reject differently)."""
        if not 1 <= batch.n_rows <= self._max_rows:
            return None
        features = self._features.matrix(batch)
        if features is None:
            return None
        raw = self._forest.raw(features)
        loss = self._model._loss
        if self._classes is None:
            return {"prediction": np.asarray(loss.link.inverse(raw.ravel()))}
        return classifier_outputs(np.asarray(self._classes), loss.predict_proba(raw))


def small_batch_predictor(
    model: object, signature: Signature, max_rows: int = MAX_ROWS
) -> SmallBatchPredictor | None:
    """A fast path for a fitted HistGradientBoosting model with numeric features only, or None
    (any other model, categorical features, a node layout this module does not know)."""
    if not type(model).__module__.startswith("sklearn.ensemble."):
        return None  # and sklearn.ensemble stays unimported for every other estimator
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if type(model) not in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        return None
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return None
    if getattr(model, "_preprocessor", None) is not None:
        return None
    features = Features.of(model, signature)
    if features is None:
        return None
    forest = _flatten(model)
    return None if forest is None else SmallBatchPredictor(model, forest, features, max_rows)


def _flatten(model: Any) -> _Forest | None:
    """The fitted trees as one node table, or None if they are not laid out as expected."""
    per_iteration = getattr(model, "n_trees_per_iteration_", None)
    iterations = getattr(model, "_predictors", None)
    baseline = getattr(model, "_baseline_prediction", None)
    n_features = getattr(model, "n_features_in_", None)
    if not (isinstance(per_iteration, int) and isinstance(iterations, list) and iterations):
        return None
    if not isinstance(n_features, int) or not isinstance(baseline, np.ndarray):
        return None
    if baseline.shape != (1, per_iteration) or baseline.dtype != np.float64:
        return None
    trees: list[np.ndarray] = []
    for iteration in iterations:
        if not isinstance(iteration, list) or len(iteration) != per_iteration:
            return None
        for tree in iteration:
            nodes = getattr(tree, "nodes", None)
            if not _known_layout(nodes, n_features):
                return None
            trees.append(nodes)
    tables = [_leaf(value, trees[0].dtype) for value in baseline[0]] + trees
    sizes = np.array([len(table) for table in tables])
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)

    def field(name: str) -> np.ndarray:
        return np.concatenate([table[name] for table in tables])

    leaf = field("is_leaf").astype(bool)
    itself = np.arange(leaf.size)
    shift = np.repeat(roots, sizes)
    left = np.where(leaf, itself, field("left").astype(np.intp) + shift)
    right = np.where(leaf, itself, field("right").astype(np.intp) + shift)
    children = np.stack([left, right], axis=1).ravel()
    depth = _depth(children, leaf, roots)
    if depth is None:
        return None
    return _Forest(
        feature=np.repeat(np.where(leaf, 0, field("feature_idx")).astype(np.intp), 2),
        threshold=np.repeat(field("num_threshold").astype(np.float64), 2),
        nan_right=np.repeat(field("missing_go_to_left") == 0, 2),
        children=children * 2,
        value=field("value").astype(np.float64),
        roots=roots * 2,
        depth=depth,
        per_iteration=per_iteration,
    )


def _known_layout(nodes: object, n_features: int) -> TypeGuard[np.ndarray]:
    """Numeric splits only, on known features, to children inside the same tree."""
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or len(nodes) == 0:
        return False
    if nodes.dtype.names is None or not set(_NODE_FIELDS) <= set(nodes.dtype.names):
        return False
    if nodes["value"].dtype != np.float64 or nodes["num_threshold"].dtype != np.float64:
        return False
    split = nodes[nodes["is_leaf"] == 0]
    inside = (split["left"] < len(nodes)) & (split["right"] < len(nodes))
    known = (split["feature_idx"] >= 0) & (split["feature_idx"] < n_features)
    return bool(inside.all() and known.all() and not split["is_categorical"].any())


def _depth(children: np.ndarray, leaf: np.ndarray, roots: np.ndarray) -> int | None:
    """Levels from the roots to the deepest leaf, counted on the children themselves (not
    trusted from a field); None if some path never ends."""
    level, depth = roots, 0
    while not leaf[level].all():
        split = level[~leaf[level]]
        level = np.unique(np.concatenate([children[2 * split], children[2 * split + 1]]))
        depth += 1
        if depth > leaf.size:
            return None
    return depth


def _leaf(value: float, dtype: np.dtype[Any]) -> np.ndarray:
    """A one-leaf tree worth ``value``: the baseline, which scikit-learn adds first."""
    leaf = np.zeros(1, dtype=dtype)
    leaf["value"] = value
    leaf["is_leaf"] = 1
    return leaf
