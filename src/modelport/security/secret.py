"""The server secret that keys are hashed under; it never enters the database.

Taken from ``MODELPORT_AUTH_SECRET``, else from the file ``MODELPORT_AUTH_SECRET_FILE``, else
from ``<home>/auth-secret``, created (mode 0600) on first use. The CLI and a server sharing one
home therefore agree without configuration; replicas sharing a PostgreSQL registry must be
given the same secret.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from modelport.config import Settings
from modelport.errors import ConfigurationError

MIN_SECRET_CHARS = 32
DEFAULT_FILE = "auth-secret"


def server_secret(settings: Settings) -> bytes:
    if settings.auth_secret is not None:
        return _checked(settings.auth_secret.get_secret_value(), "MODELPORT_AUTH_SECRET")
    if settings.auth_secret_file is not None:
        path = settings.auth_secret_file
        if not path.is_file():
            raise ConfigurationError(f"MODELPORT_AUTH_SECRET_FILE names no file: {path}")
        return _checked(path.read_text().strip(), str(path))
    path = settings.home / DEFAULT_FILE
    if not path.exists():
        _create(path)
    return _checked(path.read_text().strip(), str(path))


def _create(path: Path) -> None:
    """Write a new random secret, readable by this user only; a concurrent creator wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32) + "\n")


def _checked(value: str, source: str) -> bytes:
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"the server secret from {source} is shorter than {MIN_SECRET_CHARS} characters; "
            "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return value.encode()
