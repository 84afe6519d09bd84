"""Serving: the transports over the inference service (HTTP today: V1, V2, MLflow, the API)."""

from modelport.serving.http.app import create_app

__all__ = ["create_app"]
