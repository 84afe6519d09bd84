"""What every command starts from: the settings and the registry, with errors made plain.

A bad setting, a malformed database URL or a database that cannot be reached is reported as
``error: <title>: <detail>`` with a next step; the SQLAlchemy exceptions that carry them are
translated here, at the CLI's boundary, before anything else sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from modelport.cli import output
from modelport.config import Settings, load_settings
from modelport.errors import ConfigurationError, StorageUnavailableError
from modelport.registry import Registry

_SETTINGS_HINT = "fix the value named above; `modelport config show --describe` lists every setting"
_URL_HINT = (
    "set MODELPORT_DATABASE_URL to a SQLAlchemy URL such as "
    "sqlite:///path/modelport.db or postgresql+psycopg://user@host:5432/db"
)


def current_settings(**overrides: Any) -> Settings:
    """The effective settings (environment, ``modelport.yaml``, then ``overrides``)."""
    with output.reporting_errors({"configuration_error": _SETTINGS_HINT}):
        return load_settings(**overrides)


@contextmanager
def opened_registry(settings: Settings | None = None) -> Iterator[Registry]:
    """The registry of the current settings; errors become a message and exit code 1."""
    settings = settings or current_settings()
    with output.reporting_errors({"configuration_error": _URL_HINT}):
        registry = _open(settings)
    with output.reporting_errors():
        try:
            yield registry
        except StorageUnavailableError as exc:
            raise _with_cause(settings, exc) from exc
        finally:
            registry.close()


def _open(settings: Settings) -> Registry:
    try:
        return Registry.from_settings(settings)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigurationError(
            f"MODELPORT_DATABASE_URL is not a usable database URL: {_first_line(exc)}"
        ) from exc


def _with_cause(settings: Settings, error: StorageUnavailableError) -> StorageUnavailableError:
    """The database and the driver's own words: a server keeps them from anonymous clients
    (they go to its log), but the operator at the command line needs them."""
    shown = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    cause = error.__cause__
    reason = _first_line(getattr(cause, "orig", None) or cause or error)
    return StorageUnavailableError(f"cannot use the registry database {shown}: {reason}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
