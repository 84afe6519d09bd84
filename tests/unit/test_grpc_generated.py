"""The committed gRPC modules are exactly what protoc makes of inference.proto (`make proto`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path("modelport", "serving", "grpc")
GENERATED = ("inference_pb2.py", "inference_pb2.pyi", "inference_pb2_grpc.py")


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    # the same command as `make proto`, writing elsewhere; nothing is imported here, as
    # tritonclient's identical `inference.*` messages may already be loaded in this process
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(PACKAGE / "inference.proto"),
        ],
        cwd=ROOT / "src",
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in GENERATED:
        fresh = (tmp_path / PACKAGE / name).read_text()
        committed = (ROOT / "src" / PACKAGE / name).read_text()
        assert fresh == committed, f"{PACKAGE / name} is stale: run `make proto`"
