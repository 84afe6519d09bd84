"""modelport: take a trained model to production and keep it healthy there."""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING as _TYPE_CHECKING

from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.runtimes.pyfunc import PythonModel
from modelport.sdk import LoadedModel, load_model, log_model

if _TYPE_CHECKING:
    from modelport.client import Client

__version__ = _version("modelport")


def __getattr__(name: str) -> object:
    """``Client`` is imported on first use: servers never need httpx."""
    if name == "Client":
        from modelport.client import Client

        return Client
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")


__all__ = [
    "Client",
    "LoadedModel",
    "ModelportError",
    "PythonModel",
    "Settings",
    "__version__",
    "load_model",
    "log_model",
]
