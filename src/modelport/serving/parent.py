"""Server workers exit when their supervisor dies, instead of holding the port as orphans."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading

log = logging.getLogger("modelport.serving")

_PR_SET_PDEATHSIG = 1


def exit_with_parent(poll_s: float = 1.0) -> None:
    """Ask the kernel for SIGTERM when the parent dies; poll as a fallback where it can't.

    SIGTERM (not SIGKILL) so the worker drains like any shutdown. The poll also covers the
    window before the call, in which the parent may already have died.
    """
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the poll alone
        pass

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(poll_s):
            if os.getppid() != parent:
                log.warning("supervisor %d is gone; worker %d stops", parent, os.getpid())
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="modelport-parent-watch", daemon=True).start()
