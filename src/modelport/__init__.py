"""modelport: take a trained model to production and keep it healthy there."""

from importlib.metadata import version as _version

from modelport.client import Client
from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.runtimes.pyfunc import PythonModel
from modelport.sdk import LoadedModel, load_model, log_model

__version__ = _version("modelport")

__all__ = ["Client", "LoadedModel", "ModelportError", "PythonModel", "Settings", "__version__",
           "load_model", "log_model"]
