"""Preparation: turn a fitted object or a model file into verified files plus a full signature.

The prepared folder is loaded back through its runtime and run on the sample before anything
is registered, so a version that cannot load or predict never reaches the registry, and the
output side of the signature comes from what the saved model really returns.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ArtifactError, ModelLoadError, ModelportError
from modelport.registry.address import check_name
from modelport.registry.scratch import scratch_folder
from modelport.runtimes.base import (
    Flavor,
    LoadRequest,
    SavedModel,
    call_model,
    flavor_for,
    flavor_for_file,
    flavor_named,
    load_runtime,
)
from modelport.runtimes.batch import Batch
from modelport.runtimes.signature import Signature, infer_signature, sample_arrays

INPUT_EXAMPLE = "input_example.json"
_EXAMPLE_ROWS = 5


@dataclass(frozen=True, slots=True)
class PreparedModel:
    directory: Path
    flavor: str
    saved: SavedModel
    signature: Signature
    trusted: bool

    def load_request(self) -> LoadRequest:
        """What loads the prepared files back (to run more data through them)."""
        return LoadRequest(self.directory, self.signature, self.saved.options, self.trusted)


@contextmanager
def prepare_object(
    model: object,
    sample: Any,
    *,
    name: str | None = None,
    flavor: str | None = None,
    allow_missing: bool | None = None,
    scratch: Path | None = None,
) -> Iterator[PreparedModel]:
    """Save a live model object with its flavor (detected unless named).

    ``name``, the model it is for, is checked before anything is saved or loaded. The files
    are written in a folder under ``scratch`` (``Registry.scratch_dir``, where
    ``collect_garbage`` finds what a killed process left), else in the system temp dir.
    Whether inputs accept NaN / null follows the model (gradient-boosted trees handle missing
    values themselves) and the sample; ``allow_missing`` True or False overrides both.
    """
    if name is not None:
        check_name(name)
    chosen = flavor_named(flavor) if flavor else flavor_for(model)
    signature = infer_signature(sample, allow_missing=allow_missing)
    with _scratch(
        chosen,
        signature,
        sample,
        "could not save the model",
        scratch,
        allow_missing,
        lambda directory: chosen.save(model, directory, signature),
    ) as prepared:
        yield prepared


@contextmanager
def prepare_file(
    path: Path,
    sample: Any,
    *,
    name: str | None = None,
    trusted: bool = False,
    allow_missing: bool | None = None,
    scratch: Path | None = None,
) -> Iterator[PreparedModel]:
    """Adopt a model file already on disk (``.skops``, ``.onnx``, ``.txt``, ``.ubj`` ...).

    ``name``, the model it is for, is checked before the file is read: a bad name must not
    cost a load, and must never run a trusted pickle's code. ``scratch`` as for
    :func:`prepare_object`.
    """
    if name is not None:
        check_name(name)
    with scratch_folder(scratch) as directory:
        yield prepare_file_in(
            directory, path, sample, trusted=trusted, allow_missing=allow_missing, root=scratch
        )


def prepare_file_in(
    directory: Path,
    path: Path,
    sample: Any,
    *,
    trusted: bool,
    allow_missing: bool | None = None,
    root: Path | None = None,
) -> PreparedModel:
    """:func:`prepare_file` into an empty folder the caller owns and removes: the isolated
    child (:mod:`modelport.registry.isolation`) prepares where its parent reads the result.
    ``root``, where ``directory`` lives, only names the place in a full-disk error."""
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file")
    chosen = flavor_for_file(path)
    signature = infer_signature(sample, allow_missing=allow_missing)
    return _prepare(
        chosen,
        directory,
        signature,
        sample,
        f"could not read {path.name}",
        root,
        allow_missing,
        lambda target: chosen.import_file(path, target, trusted),
    )


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


@contextmanager
def _scratch(
    flavor: Flavor,
    signature: Signature,
    sample: Any,
    failure: str,
    root: Path | None,
    allow_missing: bool | None,
    write: Callable[[Path], SavedModel],
) -> Iterator[PreparedModel]:
    """A scratch folder under ``root`` that :func:`_prepare` fills; removed on exit."""
    with scratch_folder(root) as directory:
        yield _prepare(flavor, directory, signature, sample, failure, root, allow_missing, write)


def _prepare(
    flavor: Flavor,
    directory: Path,
    signature: Signature,
    sample: Any,
    failure: str,
    root: Path | None,
    allow_missing: bool | None,
    write: Callable[[Path], SavedModel],
) -> PreparedModel:
    """The flavor writes into ``directory``; a framework's own exception there becomes
    ``ModelLoadError``. Missing values follow the model unless ``allow_missing`` says."""
    try:
        saved = write(directory)
    except ModelportError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:  # the disk is at fault
            where = root or "the temporary folder"
            raise ArtifactError(
                f"cannot write the scratch copy under {where}: {exc.strerror}"
            ) from exc
        raise ModelLoadError(f"{flavor.name} {failure}: {type(exc).__name__}: {exc}") from exc
    if allow_missing is None and saved.handles_missing:
        signature = signature.allowing_missing()
    return _complete(flavor, directory, saved, signature, sample, trusted=saved.needs_trust)


def _complete(
    flavor: Flavor,
    directory: Path,
    saved: SavedModel,
    signature: Signature,
    sample: Any,
    *,
    trusted: bool,
) -> PreparedModel:
    """Load the saved files back, run the sample through them, record outputs and example."""
    runtime = load_runtime(flavor.name, LoadRequest(directory, signature, saved.options, trusted))
    batch = signature.conform(sample_arrays(sample)[1])
    try:
        outputs = call_model(runtime, batch)
    except ModelportError as exc:
        raise ModelLoadError(f"the saved model failed on the sample input: {exc.detail}") from exc
    write_example(directory / INPUT_EXAMPLE, batch)
    return PreparedModel(directory, flavor.name, saved, signature.with_outputs(outputs), trusted)


def write_example(path: Path, batch: Batch) -> None:
    """A few sample rows, used to warm the model up and to document requests."""
    rows = min(batch.n_rows, _EXAMPLE_ROWS)
    columns = {name: _jsonable(array[:rows]) for name, array in batch.columns.items()}
    path.write_text(json.dumps({"columns": columns}))


def read_example(directory: Path, signature: Signature) -> Batch:
    data = json.loads((directory / INPUT_EXAMPLE).read_text())["columns"]
    return signature.conform({name: np.array(values) for name, values in data.items()})


def _jsonable(array: np.ndarray) -> list[Any]:
    if array.dtype.kind == "f":
        values = array.astype(object)
        values[np.isnan(array)] = None  # NaN has no JSON form; null reads back as missing
        return values.tolist()  # type: ignore[no-any-return]
    return array.tolist()  # type: ignore[no-any-return]
