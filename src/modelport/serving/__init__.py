"""Serving: the ASGI app, its protocols (V1, V2, MLflow), the model host and metrics."""

from modelport.serving.app import create_app

__all__ = ["create_app"]
