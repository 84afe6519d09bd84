"""The README's five-minute tutorial, executed as written (ports swapped for a free one)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from modelport.config import Settings
from tests.e2e.conftest import free_port, settings_env, start_server

README = Path(__file__).resolve().parents[2] / "README.md"


def tutorial_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    section = text.split("## Five-minute tutorial", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(python|bash)\n(.*?)```", section, flags=re.DOTALL)


def _wait_for_version(url: str, version: int) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/api/serving").json()["models"][0]["version"] != version:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_tutorial_runs_as_written(settings: Settings, tmp_path: Path, live_server: Any) -> None:
    env = settings_env(settings)
    port = free_port()
    server = None
    blocks = tutorial_blocks()
    assert [kind for kind, _ in blocks].count("python") == 1
    for kind, code in blocks:
        if kind == "python":
            done = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert "fraud/1 fraud/2" in done.stdout
            continue
        for line in code.strip().splitlines():
            line = line.replace("8000", str(port))
            if line.startswith("modelport serve"):
                args = shlex.split(line.rstrip("&"))[2:]
                models = [a for a in args if not a.startswith("--") and a != str(port)]
                server = start_server(models, settings, tmp_path, port=port)
                continue
            if line.startswith("modelport"):
                command = [sys.executable, "-m", "modelport", *shlex.split(line)[1:]]
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, (line, done.stderr)
                if server is not None and "alias set" in line:
                    _wait_for_version(server.url, int(line.split()[-1]))
                continue
            assert line.startswith("curl"), line
            done = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, (line, done.stderr)
            answer = json.loads(done.stdout)
            assert "error" not in answer, (line, answer)
            assert "error_code" not in answer, (line, answer)
    assert server is not None
    assert server.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "Application shutdown complete" in server.log()
