"""Conversion: a registered version's original object as an ONNX graph (skl2onnx, onnxmltools).

Graph inputs are laid out the way the onnx runtime feeds them, so the graph can be registered
under the source's own signature; converter failures become ``ConversionError`` with the
converter's first line and root cause (skl2onnx dumps whole arrays into some messages).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ConfigurationError, ConversionError, ModelportError
from modelport.registry.records import VersionRecord
from modelport.runtimes.signature import STRING, Signature, SignatureKind

_CONVERTIBLE = ("sklearn", "lightgbm", "xgboost")
_BOOSTERS = ("lightgbm", "xgboost")
_STACKED_INPUT = "stacked_columns"  # no column's name: the onnx runtime stacks all columns in
_MESSAGE_CHARS = 160


def check_convertible(source: VersionRecord) -> None:
    """Refuse versions that have no converter, before anything is loaded."""
    if source.flavor == "onnx":
        raise ConversionError(f"{source.address} is already an ONNX version")
    if source.flavor not in _CONVERTIBLE:
        raise ConversionError(
            f"{source.address} is a {source.flavor} version; only {', '.join(_CONVERTIBLE)} "
            "versions compile to ONNX: serve it as is"
        )


def read_original(source: VersionRecord, directory: Path) -> Any:
    """The object a version was saved from, read from its verified files as its runtime does.

    Call it after :meth:`Registry.load` succeeded: that is what refuses an untrusted pickle.
    """
    options = source.flavor_options
    if source.flavor == "lightgbm":
        import lightgbm

        from modelport.runtimes.lightgbm import MODEL_FILE

        return lightgbm.Booster(model_file=directory / MODEL_FILE)
    if source.flavor == "xgboost":
        import xgboost

        return xgboost.Booster(params={"nthread": 1}, model_file=directory / options["file"])
    from modelport.runtimes.sklearn import PICKLE_FILE, SKOPS_FILE

    if options.get("format") == "pickle":
        import joblib

        return joblib.load(directory / PICKLE_FILE)
    import skops.io as sio

    return sio.load(directory / SKOPS_FILE, trusted=list(options.get("trusted_types", [])))


def convert(model: Any, source: VersionRecord) -> tuple[Any, str]:
    """The ONNX graph of ``model`` and the converter(s) that made it, with their versions.

    A converter's own exception becomes ``ConversionError``.
    """
    boosters = _booster_parts(model) if source.flavor == "sklearn" else set()
    converter = _converter(
        (["skl2onnx"] if source.flavor == "sklearn" else [])
        + (["onnxmltools"] if boosters or source.flavor in _BOOSTERS else [])
    )
    try:
        if source.flavor == "sklearn":
            return _from_sklearn(model, source.signature, boosters), converter
        return _from_booster(model, source.flavor, source.signature), converter
    except ModelportError:
        raise
    except Exception as exc:
        raise ConversionError(
            f"{converter} cannot convert {_describe(model)} ({_reason(exc)}); "
            f"serve {source.address} as is with its {source.flavor} runtime"
        ) from exc


def _converter(packages: list[str]) -> str:
    """``skl2onnx 1.20.0 + onnxmltools 1.16.0``: lineage must say what made the graph."""
    try:
        return " + ".join(f"{package} {version(package)}" for package in packages)
    except PackageNotFoundError as exc:
        raise ConfigurationError(
            f"{exc.name} is not installed; try `pip install modelport[onnx]`"
        ) from None


def _parts(model: Any) -> list[Any]:
    """The estimator and everything nested in it (Pipeline steps, ColumnTransformer parts)."""
    return [model, *model.get_params(deep=True).values()]


def _booster_parts(model: Any) -> set[str]:
    """The gradient-boosting frameworks (lightgbm, xgboost) of a Pipeline's steps."""
    return {type(p).__module__.split(".")[0] for p in _parts(model)} & set(_BOOSTERS)


def _from_sklearn(model: Any, signature: Signature, boosters: set[str]) -> Any:
    from skl2onnx import convert_sklearn, get_latest_tested_opset_version
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.compose import ColumnTransformer

    _register_booster_converters(boosters)
    # a ColumnTransformer picks columns by name, so each column must be a graph input of its own
    per_column = any(isinstance(p, ColumnTransformer) for p in _parts(model)) or any(
        spec.dtype == STRING for spec in signature.inputs
    )
    types = (FloatTensorType, Int64TensorType, StringTensorType) if per_column else None
    return convert_sklearn(
        model,
        initial_types=_graph_inputs(signature, FloatTensorType, types),
        options={id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None,
        # onnxmltools' tree converters write the ai.onnx.ml 3 operators, not skl2onnx's 5
        target_opset={"": get_latest_tested_opset_version(), "ai.onnx.ml": 3} if boosters else None,
    )


def _register_booster_converters(frameworks: set[str]) -> None:
    """Teach skl2onnx the LightGBM / XGBoost wrappers found inside a Pipeline."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes as classifier_shapes,
    )
    from skl2onnx.common.shape_calculator import (
        calculate_linear_regressor_output_shapes as regressor_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if "lightgbm" in frameworks:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            lightgbm.LGBMClassifier,
            "LightGbmLGBMClassifier",
            classifier_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            lightgbm.LGBMRegressor,
            "LightGbmLGBMRegressor",
            regressor_shapes,
            convert_lightgbm,
            options={"split": None},
        )
    if "xgboost" in frameworks:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        update_registered_converter(
            xgboost.XGBClassifier,
            "XGBoostXGBClassifier",
            classifier_shapes,
            convert_xgboost,
            options=classifier_options,
        )
        update_registered_converter(
            xgboost.XGBRegressor, "XGBoostXGBRegressor", regressor_shapes, convert_xgboost
        )


def _from_booster(booster: Any, flavor: str, signature: Signature) -> Any:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    inputs = _graph_inputs(signature, FloatTensorType, None)
    if flavor == "lightgbm":
        return onnxmltools.convert_lightgbm(booster, initial_types=inputs, zipmap=False)
    return onnxmltools.convert_xgboost(booster, initial_types=inputs)


def _graph_inputs(
    signature: Signature, float_type: Any, column_types: tuple[Any, Any, Any] | None
) -> list[tuple[str, Any]]:
    """The tensor, one ``[N, 1]`` input per column (``column_types``: float, integer, string),
    or every column stacked into one float matrix, in signature order."""
    specs = signature.inputs
    if signature.kind is SignatureKind.TENSOR:
        return [(specs[0].name, float_type([None, specs[0].width]))]
    if column_types is None:
        return [(_STACKED_INPUT, float_type([None, len(specs)]))]
    floats, integers, strings = column_types
    return [
        (
            spec.name,
            (
                strings
                if spec.dtype == STRING
                else floats
                if np.dtype(spec.dtype).kind == "f"
                else integers
            )([None, 1]),
        )
        for spec in specs
    ]


def _describe(model: Any) -> str:
    """``Pipeline(StandardScaler, HistGradientBoostingClassifier)``, so the failing step shows."""
    steps = getattr(model, "steps", None)
    name = type(model).__name__
    return f"{name}({', '.join(type(s).__name__ for _, s in steps)})" if steps else name


def _reason(exc: BaseException) -> str:
    """The first line of the converter's message and of its root cause."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = f"{type(exc).__name__}: {_first_line(exc)}"
    return text if root is exc else f"{text}, caused by {type(root).__name__}: {_first_line(root)}"


def _first_line(exc: BaseException) -> str:
    line = str(exc).strip().split("\n", 1)[0].rstrip(",;: ")
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."
