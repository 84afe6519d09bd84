"""HTTP client for a running modelport server; problem+json comes back as our exceptions."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from modelport.config import Settings
from modelport.errors import ModelportError, RequestTimeoutError, error_class_for
from modelport.jobs.model import JobState
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

    def send_events(self, events: list[dict[str, Any]]) -> int:
        """Outcomes for experiments: ``{"metric", "value", "unit_id" and/or "request_id",
        "at"?}`` each; returns how many were stored."""
        return int(self._call("POST", "/v1/events", json={"events": events})["accepted"])

    def experiment_report(self, name: str, bootstrap: int = 0, seed: int = 0) -> dict[str, Any]:
        """An experiment's report (docs/experiments.md); ``bootstrap`` resamples, if any."""
        params = {"bootstrap": bootstrap, "seed": seed}
        return dict(
            self._call("GET", f"/api/experiments/{quote(name, safe='')}/report", params=params)
        )

    def submit_job(
        self,
        model: str,
        body: bytes | Mapping[str, Any],
        *,
        content_type: str | None = None,
        format: str | None = None,
        output: str | None = None,
    ) -> dict[str, Any]:
        """Queue any predict body (V1, V2, MLflow JSON/CSV/Parquet); the queued job comes back.

        A mapping is sent as JSON; bytes as they are, under ``content_type``. ``format``
        (v1, v2, mlflow) names the protocol when the server should not tell it from the body.
        """
        params = {k: v for k, v in (("format", format), ("output", output)) if v is not None}
        sent: dict[str, Any] = {"params": params}
        if isinstance(body, bytes):
            sent["content"] = body
            sent["headers"] = {"Content-Type": content_type} if content_type else {}
        else:
            sent["json"] = body
        return dict(self._call("POST", _addressed("/v1/models", model) + "/jobs", **sent))

    def submit_batch_job(
        self, model: str, input: str, output: str, **options: Any
    ) -> dict[str, Any]:
        """Queue a batch run of files the server can reach (inside its
        ``MODELPORT_BATCH_ROOTS``); ``options``: passthrough, outputs, format, chunk_rows,
        overwrite, as ``modelport batch`` takes them. Its answer is the run's summary."""
        body = {"input": input, "output": output, **options}
        path = f"/v1/models/{quote(model, safe='')}/batch-jobs"
        return dict(self._call("POST", path, json=body))

    def job(self, job_id: str) -> dict[str, Any]:
        """State, progress, and the answer (inline up to 1 MiB) or the error (a problem dict)."""
        return dict(self._call("GET", _job_path(job_id)))

    def jobs(
        self, state: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Jobs the key may see, newest first."""
        params: dict[str, Any] = {"limit": limit}
        params.update({k: v for k, v in (("state", state), ("model", model)) if v is not None})
        return list(self._call("GET", "/v1/jobs", params=params)["jobs"])

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """A queued job is cancelled at once, a running one at its next piece."""
        return dict(self._call("DELETE", _job_path(job_id)))

    def job_result(self, job_id: str) -> bytes:
        """The answer's bytes as the predict route would have sent them, whatever their size."""
        return self._request("GET", f"{_job_path(job_id)}/result").content

    def wait_job(
        self,
        job_id: str,
        timeout_s: float | None = None,
        poll_s: float = 0.2,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job has finished (succeeded, failed or cancelled) and return it.

        ``on_progress`` sees every status polled, the last one included. After ``timeout_s``
        a :class:`RequestTimeoutError` is raised; the job itself goes on.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            if JobState(job["state"]).finished:
                return job
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise RequestTimeoutError(
                    f"job {job_id} is still {job['state']} after {timeout_s:g} s"
                )
            time.sleep(poll_s if left is None else min(poll_s, left))

    def _call(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else {}

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A successful response, or the server's problem (or the network's) as our error."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ModelportError(f"cannot reach {self._http.base_url}: {exc}") from exc
        if response.is_success:
            return response
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
    """V2 metadata path of an address."""
    return _addressed("/v2/models", model)


def _addressed(prefix: str, model: str) -> str:
    """``prefix/name/versions/3`` for a version, ``prefix/name@alias`` quoted for an alias."""
    address = ModelAddress.parse(model)
    if address.version is not None:
        return f"{prefix}/{quote(address.name, safe='')}/versions/{address.version}"
    return f"{prefix}/{quote(str(address), safe='')}"


def _job_path(job_id: str) -> str:
    return f"/v1/jobs/{quote(job_id, safe='')}"


def _problem_to_error(response: httpx.Response) -> ModelportError:
    try:
        problem = response.json()
    except ValueError:
        return ModelportError(f"HTTP {response.status_code}: {response.text[:200]}")
    return problem_error(problem)


def problem_error(problem: Mapping[str, Any]) -> ModelportError:
    """The error a problem dict (an answer's, or a failed job's ``error``) describes."""
    return error_class_for(str(problem.get("code", "")))(str(problem.get("detail", "")))


def _listed(array: np.ndarray) -> list[Any]:
    values = array.astype(object) if array.dtype.kind == "f" else array
    if array.dtype.kind == "f":
        values[np.isnan(array)] = None
    return values.tolist()  # type: ignore[no-any-return]
