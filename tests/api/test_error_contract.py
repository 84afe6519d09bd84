"""Every documented route, asked something wrong, answers one problem+json shape."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance", "request_id"}


def _bad_requests(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) for every operation, with path parameters that name nothing."""
    calls = []
    for path, operations in schema["paths"].items():
        concrete = path.replace("{name}", "ghost").replace("{version}", "99")
        concrete = concrete.replace("{alias}", "nowhere")
        calls += [(method.upper(), concrete) for method in operations]
    return calls


def test_every_error_is_problem_json_with_the_protocol_keys(
    serve: Any, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    with serve(["iris"]) as client:
        schema = client.get("/openapi.json").json()
        calls = _bad_requests(schema)
        assert ("POST", "/v1/models/ghost:predict") in calls
        assert ("POST", "/v2/models/ghost/infer") in calls
        assert ("POST", "/invocations") in calls
        checked = 0
        for method, path in calls:
            answer = client.request(
                method, path, content=b"{not json", headers={"content-type": "application/json"}
            )
            assert answer.status_code < 500, (method, path, answer.text)
            if answer.status_code < 400:
                continue
            checked += 1
            assert answer.headers["content-type"] == "application/problem+json", path
            problem = answer.json()
            assert set(problem) >= PROBLEM_KEYS, (path, problem)
            assert problem["status"] == answer.status_code
            if path.startswith(("/v1/", "/v2")):
                assert problem["error"] == problem["detail"], path
            if path.endswith("invocations"):
                assert {"error_code", "message"} <= set(problem), path
        assert checked > 20


def test_openapi_documents_inference_routes(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        paths = client.get("/openapi.json").json()["paths"]
        docs = client.get("/docs")
    predict = paths["/v1/models/{name}:predict"]["post"]
    assert predict["tags"] == ["KServe V1"]
    assert predict["requestBody"]["content"]["application/json"]["schema"]["example"]
    assert {p["name"] for p in predict["parameters"]} == {"name", "output"}
    assert "post" in paths["/v2/models/{name}/versions/{version}/infer"]
    assert "post" in paths["/models/{name}/invocations"]
    assert docs.status_code == 200


def test_the_document_describes_every_error_as_a_problem(
    serve: Any, iris_served: np.ndarray
) -> None:
    """Found by the fuzzer: errors were documented as FastAPI's JSON 422 and nothing else, while
    every route answers 4xx/5xx (404, 400, 413, 503, ...) as problem+json."""
    with serve(["iris"]) as client:
        schema = client.get("/openapi.json").json()
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == PROBLEM_KEYS
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"4XX", "5XX"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (path, status)
    assert list(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
