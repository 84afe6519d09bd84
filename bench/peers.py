"""The peers modelport is compared with, each installed into its own virtualenv under /tmp.

Peers are not project dependencies: MLflow, BentoML and MLServer pin web stacks that fight
each other and ours (MLServer 1.7.1 needs ``uvloop<0.22``, which breaks nothing of theirs and
would downgrade ours). So each gets a virtualenv of its own, built with the ordinary pip of
this machine and reused while its marker file says the same requirement set is installed. A
peer that cannot be installed is reported and left out; it never stops the comparison.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PEER_ROOT = Path("/tmp/modelport-peers")
MARKER = ".modelport-peer.json"
INSTALL_TIMEOUT_S = 1800


@dataclass(frozen=True, slots=True)
class Venv:
    """One peer's virtualenv: what to install, and whose versions to print in the header."""

    name: str
    requirements: tuple[str, ...]
    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Installed:
    """A ready virtualenv; ``install_s`` is what the install took when it was made."""

    venv: Venv
    path: Path
    versions: dict[str, str]
    install_s: float
    reused: bool

    @property
    def bin(self) -> Path:
        return self.path / "bin"


def venvs(sklearn_version: str) -> dict[str, Venv]:
    """The four virtualenvs; scikit-learn matches ours so the same pickles load everywhere."""
    sklearn = f"scikit-learn=={sklearn_version}"
    common = ("scikit-learn", "numpy")
    return {
        "fastapi": Venv(
            "fastapi",
            ("fastapi", "uvicorn[standard]", sklearn, "orjson", "joblib"),
            ("fastapi", "uvicorn", "uvloop", "orjson", *common),
        ),
        "mlflow": Venv(
            "mlflow",
            ("mlflow>=3.17,<4", sklearn),
            ("mlflow", "skops", "uvicorn", "pandas", *common),
        ),
        "bentoml": Venv(
            "bentoml", ("bentoml>=1.4,<1.5", sklearn, "joblib"), ("bentoml", "uvicorn", *common)
        ),
        "mlserver": Venv(
            "mlserver",
            ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22", sklearn),
            ("mlserver", "mlserver-sklearn", "uvloop", "fastapi", *common),
        ),
    }


def ensure(venv: Venv, root: Path = PEER_ROOT) -> Installed | str:
    """The installed virtualenv, or why it could not be installed (a message, not an exception).

    A virtualenv is reused only when its marker holds the same requirements and Python; any
    difference rebuilds it from scratch, so a half-finished or stale install is never measured.
    """
    path = root / venv.name
    wanted = {"requirements": sorted(venv.requirements), "python": platform.python_version()}
    marker = _read_marker(path)
    if marker is not None and all(marker.get(k) == v for k, v in wanted.items()):
        return Installed(
            venv,
            path,
            _versions(path, venv.packages),
            float(marker.get("install_s", 0.0)),
            reused=True,
        )
    print(f"installing {venv.name} into {path}: {' '.join(venv.requirements)} ...", flush=True)
    started = time.monotonic()
    error = _install(path, venv.requirements)
    if error:
        return error
    install_s = round(time.monotonic() - started, 1)
    (path / MARKER).write_text(json.dumps({**wanted, "install_s": install_s}, indent=2) + "\n")
    print(f"  {venv.name} installed in {install_s:g} s", flush=True)
    return Installed(venv, path, _versions(path, venv.packages), install_s, reused=False)


def _read_marker(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not (path / "bin" / "python").exists() or not isinstance(data, dict):
        return None
    return data


def _install(path: Path, requirements: tuple[str, ...]) -> str:
    """Fresh virtualenv plus requirements; '' on success, else the reason in a few lines."""
    (path / MARKER).unlink(missing_ok=True)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(path)],
        [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
    )
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(step[:4])} ... did not finish in {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            return f"{' '.join(step[:4])} ... exited {done.returncode}:\n{tail}"
    return ""


def _versions(path: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions inside the virtualenv (its own metadata, not ours)."""
    code = (
        "import json, sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\nfor name in sys.argv[1:]:\n"
        "    try:\n        out[name] = version(name)\n"
        "    except PackageNotFoundError:\n        out[name] = 'not installed'\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(
        [str(path / "bin" / "python"), "-c", code, *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {name: "unknown" for name in packages}


def main() -> None:
    """``python bench/peers.py [NAME ...]``: install (or check) peer virtualenvs only."""
    import sklearn

    specs = venvs(sklearn.__version__)
    for name in sys.argv[1:] or list(specs):
        result = ensure(specs[name])
        if isinstance(result, str):
            print(f"{name}: NOT INSTALLED: {result}")
        else:
            state = "reused" if result.reused else "new"
            print(f"{name}: {state}, install {result.install_s:g} s, {result.versions}")


if __name__ == "__main__":
    main()
