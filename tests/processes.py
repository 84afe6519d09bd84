"""Processes a pytest process started that are still listening, found through /proc (Linux).

Each pytest process (the only one, or each xdist worker) puts a mark of its own in its
environment; every process it starts inherits it, and so do their children, even after a
parent dies and they are re-parented. At the end, a marked process that owns a listening TCP
socket is a leftover. Only marked processes are ever reported or stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MARK = "PYTEST_MODELPORT_OWNER"
_PROC = Path("/proc")
_LISTEN = "0A"  # TCP state in /proc/net/tcp


@dataclass(frozen=True)
class Leftover:
    pid: int
    command: str
    addresses: tuple[str, ...]

    def __str__(self) -> str:
        return f"pid {self.pid} listening on {', '.join(self.addresses)}: {self.command}"


def mark_this_process() -> None:
    os.environ[MARK] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def listening_leftovers() -> list[Leftover]:
    """Marked processes (other than this one) that own a listening TCP socket."""
    mark = os.environ.get(MARK)
    if mark is None or not _PROC.is_dir():
        return []
    wanted = f"{MARK}={mark}".encode()
    listening = _listening_sockets()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            addresses = tuple(
                listening[inode] for inode in _socket_inodes(entry) if inode in listening
            )
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if addresses:
            found.append(Leftover(int(entry.name), command[:200], addresses))
    return found


def still_listening_after(grace_s: float) -> list[Leftover]:
    """The leftovers that outlive ``grace_s``: a worker whose supervisor a fixture killed stops
    on its own (the kernel sends it SIGTERM, and it drains), just not at once."""
    deadline = time.monotonic() + grace_s
    leftovers = listening_leftovers()
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = listening_leftovers()
    return leftovers


def stop(leftovers: list[Leftover]) -> None:
    for leftover in leftovers:
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(leftover.pid, signal.SIGKILL)


def _socket_inodes(process: Path) -> list[str]:
    inodes = []
    for fd in (process / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.append(target[len("socket:[") : -1])
    return inodes


def _listening_sockets() -> dict[str, str]:
    """Socket inode -> ``address:port`` of every listening TCP socket."""
    sockets = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                port = fields[1].rsplit(":", 1)[1]
                sockets[fields[9]] = f"{table}:{int(port, 16)}"
    return sockets
