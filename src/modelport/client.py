"""HTTP client for a running modelport server; problem+json comes back as our exceptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from modelport.config import Settings
from modelport.errors import ModelportError, error_class_for
from modelport.registry.address import ModelAddress
from modelport.runtimes.signature import SignatureKind, sample_arrays


class Client:
    """``Client("http://127.0.0.1:8000").predict("iris", rows)`` — V1 protocol under the hood.

    The API key is ``api_key``, else ``MODELPORT_API_KEY``; none is sent without one.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        if api_key is None:
            configured = Settings().api_key
            api_key = None if configured is None else configured.get_secret_value()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def predict(self, model: str, data: Any, output: str | None = None) -> np.ndarray:
        """Rows (ndarray, DataFrame or dict of columns) in, one output array out."""
        kind, arrays = sample_arrays(data)
        if kind is SignatureKind.TENSOR:
            body: dict[str, Any] = {"instances": next(iter(arrays.values())).tolist()}
        else:
            body = {"inputs": {name: _listed(a) for name, a in arrays.items()}}
        params = {"output": output} if output else None
        answer = self._call("POST", f"{_v1_path(model)}:predict", json=body, params=params)
        return np.asarray(answer["predictions"])

    def metadata(self, model: str) -> dict[str, Any]:
        """Open Inference Protocol V2 metadata (inputs, outputs) of the version served."""
        return dict(self._call("GET", _v2_path(model)))

    def ready(self) -> bool:
        return self._http.get("/readyz").status_code == 200

    def models(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/models")["models"])

    def versions(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/models/{name}/versions")["versions"])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._call("PUT", f"/api/models/{name}/aliases/{alias}", json={"version": version})

    def serving(self) -> list[dict[str, Any]]:
        """What the server hosts and the last load failure of each model."""
        return list(self._call("GET", "/api/serving")["models"])

    def _call(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ModelportError(f"cannot reach {self._http.base_url}: {exc}") from exc
        if response.is_success:
            return response.json() if response.content else {}
        raise _problem_to_error(response)


def _v1_path(model: str) -> str:
    """KServe V1 path of an address: ``name``, ``name/versions/3``, ``name/labels/alias``."""
    address = ModelAddress.parse(model)
    path = f"/v1/models/{quote(address.name, safe='')}"
    if address.version is not None:
        return f"{path}/versions/{address.version}"
    if address.alias is not None:
        return f"{path}/labels/{quote(address.alias, safe='')}"
    return path


def _v2_path(model: str) -> str:
    """V2 metadata path: ``name/versions/3`` for a version, ``name@alias`` quoted for an alias."""
    address = ModelAddress.parse(model)
    if address.version is not None:
        return f"/v2/models/{quote(address.name, safe='')}/versions/{address.version}"
    return f"/v2/models/{quote(str(address), safe='')}"


def _problem_to_error(response: httpx.Response) -> ModelportError:
    try:
        problem = response.json()
    except ValueError:
        return ModelportError(f"HTTP {response.status_code}: {response.text[:200]}")
    error = error_class_for(str(problem.get("code", "")))(str(problem.get("detail", "")))
    return error


def _listed(array: np.ndarray) -> list[Any]:
    values = array.astype(object) if array.dtype.kind == "f" else array
    if array.dtype.kind == "f":
        values[np.isnan(array)] = None
    return values.tolist()  # type: ignore[no-any-return]
