"""Preparing a trusted file (pickle, joblib) in a child process with resource limits.

Loading such a file runs its code, so a server never loads it itself: a fresh interpreter
(``python -m modelport.registry.isolation``) applies its limits (address space, CPU seconds,
file size, no core files), then adopts the file, loads it back and runs the sample, exactly as
:func:`~modelport.registry.preparation.prepare_file` does in-process. It answers with one JSON
document on its stdout: the flavor, the saved model's report and the signature, which is all
``Registry.register`` needs besides the files the child wrote. The parent never unpickles.

Why ``subprocess`` and not ``multiprocessing``: multiprocessing returns results as pickles,
which the parent would have to unpickle, from the very process that runs untrusted code; a
fork would inherit the server's threads, sockets and database connections. A fresh
interpreter speaking JSON over a pipe shares nothing, and its exit status tells a limit's
signal from a crash. The parent enforces the wall-clock limit and kills the child's whole
process group when it is past.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelport.errors import (
    ArtifactError,
    FieldError,
    InvalidInputError,
    ModelportError,
    error_class_for,
)
from modelport.registry.address import check_name
from modelport.registry.preparation import PreparedModel, prepare_file_in
from modelport.registry.scratch import scratch_folder
from modelport.runtimes.base import SavedModel
from modelport.runtimes.signature import Signature

_MODEL_DIR = "model"
_LOG = "child.log"
_LOG_TAIL = 500
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding this ``modelport`` package, so that the child runs the same code."""


@dataclass(frozen=True, slots=True)
class ChildLimits:
    """What the child may use; each limit is named after the setting that sets it."""

    memory_bytes: int
    """Address space (RLIMIT_AS): past it allocations fail with MemoryError."""
    cpu_s: int
    """CPU seconds (RLIMIT_CPU): past it the kernel stops the child with SIGXCPU."""
    file_bytes: int
    """Largest file the child may write (RLIMIT_FSIZE)."""
    timeout_s: float
    """Wall-clock time, enforced by the parent: a child blocked or sleeping uses no CPU."""


@contextmanager
def prepare_isolated(
    path: Path,
    sample: Any,
    limits: ChildLimits,
    *,
    name: str | None = None,
    scratch: Path | None = None,
) -> Iterator[PreparedModel]:
    """:func:`~modelport.registry.preparation.prepare_file` of a trusted file, run in a child.

    The prepared files live in a scratch folder under ``scratch`` until the block ends,
    whatever the child did (``modelport gc`` finds the folder if this process is killed).
    """
    if name is not None:
        check_name(name)
    with scratch_folder(scratch) as work:
        model_dir = work / _MODEL_DIR
        model_dir.mkdir()
        request = {
            "source": str(path.resolve()),
            "directory": str(model_dir),
            "sample": sample,
            "limits": asdict(limits),
        }
        answer = _run_child(request, limits, work)
        yield _prepared(answer, model_dir)


def _run_child(request: dict[str, Any], limits: ChildLimits, work: Path) -> dict[str, Any]:
    """Run the child in ``work``; its answer, or the error its end stands for."""
    log = work / _LOG
    with (
        log.open("wb") as errors,
        subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=work,  # what the model writes beside itself goes with the scratch folder
            env=_environment(),
            start_new_session=True,  # its own process group: killed with whatever it started
        ) as child,
    ):
        try:
            out, _ = child.communicate(json.dumps(request).encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            raise ArtifactError(
                f"preparing the trusted file took longer than {limits.timeout_s:g} s "
                "(MODELPORT_TRUSTED_TIMEOUT_S); the child process was killed"
            ) from None
        finally:
            _kill_group(child)  # past the timeout, or a grandchild that outlives the child
    if child.returncode != 0:
        raise _death(child.returncode, limits, _tail(log))
    try:
        answer: dict[str, Any] = json.loads(out)
    except ValueError:
        raise ArtifactError(
            f"the child process preparing the trusted file gave no result{_tail(log)}"
        ) from None
    if "error" in answer:
        raise _rebuilt(answer["error"])
    return answer


def _environment() -> dict[str, str]:
    """This process's environment, less MODELPORT_* (the database URL, the auth secret are
    no business of the code the child runs), with one BLAS thread (the address space of the
    imports stays well inside the limit) and this very modelport first on the path."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    environment.update(dict.fromkeys(_ONE_THREAD, "1"))
    path = [str(_PACKAGE_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(path)
    return environment


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):  # the group is already gone
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _death(returncode: int, limits: ChildLimits, log: str) -> ArtifactError:
    """The error a child's abnormal end stands for, naming the limit it hit if it did."""
    if returncode == -signal.SIGXCPU:
        reason = f"used more than {limits.cpu_s} s of CPU (MODELPORT_TRUSTED_CPU_S)"
    elif returncode == -signal.SIGKILL:
        reason = "was killed (SIGKILL; out of memory or past its CPU hard limit)"
    elif returncode < 0:
        reason = f"died of signal {signal.Signals(-returncode).name}"
    else:
        reason = f"exited with status {returncode}"
    return ArtifactError(f"the child process preparing the trusted file {reason}{log}")


def _tail(log: Path) -> str:
    """The end of what the child wrote to stderr, as a suffix of an error's detail."""
    text = log.read_bytes()[-_LOG_TAIL:].decode(errors="replace").strip()
    return f"; its last output: {text}" if text else ""


def _rebuilt(error: dict[str, Any]) -> ModelportError:
    """The child's problem+json as the same class, so that the caller sees the same status;
    preparing a file fails only on the file or the sample, so any other code is an artifact's."""
    errors = [FieldError(e["pointer"], e["message"]) for e in error.get("errors", [])]
    cls = error_class_for(error["code"])
    if not issubclass(cls, ArtifactError | InvalidInputError):
        cls = ArtifactError
    return cls(str(error["detail"]), errors=errors)


def _prepared(answer: dict[str, Any], directory: Path) -> PreparedModel:
    """The child's answer over the files it wrote; only JSON is read, nothing is loaded."""
    for path in directory.rglob("*"):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ArtifactError(f"the child process left {path.name!r}, not a regular file")
    try:
        saved = SavedModel(**answer["saved"])
        signature = Signature.from_dict(answer["signature"])
        return PreparedModel(directory, answer["flavor"], saved, signature, answer["trusted"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"the child process answered an unreadable result: {exc!r}") from exc


# -- the child --------------------------------------------------------------------------


def _limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def _apply(limits: dict[str, Any]) -> None:
    """Before anything is loaded. CPU: the soft limit sends SIGXCPU, the hard one a second
    later SIGKILL, for code that catches the first."""
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    _limit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    _apply(request["limits"])
    try:
        prepared = prepare_file_in(
            Path(request["directory"]), Path(request["source"]), request["sample"], trusted=True
        )
    except (ModelportError, MemoryError) as exc:
        return {"error": _refusal(exc, request["limits"]["memory_bytes"]).to_problem()}
    return {
        "flavor": prepared.flavor,
        "saved": asdict(prepared.saved),
        "signature": prepared.signature.to_dict(),
        "trusted": prepared.trusted,
    }


def _refusal(exc: ModelportError | MemoryError, memory_bytes: int) -> ModelportError:
    """``exc``, unless memory ran out: then the limit, by the setting that sets it."""
    if isinstance(exc, ModelportError) and not _ran_out_of_memory(exc):
        return exc
    return ArtifactError(
        "preparing the trusted file ran out of memory: the limit is "
        f"{memory_bytes} bytes (MODELPORT_TRUSTED_MEMORY_BYTES)"
    )


def _ran_out_of_memory(exc: BaseException) -> bool:
    """A MemoryError anywhere in the chain: runtimes wrap the loader's in ModelLoadError."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main() -> None:
    """Read the request on stdin, answer on stdout; what the model prints goes to stderr."""
    answer_to = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    request = json.loads(sys.stdin.read())
    answer = _answer(request)
    answer_to.write(json.dumps(answer))
    answer_to.close()


if __name__ == "__main__":
    main()
