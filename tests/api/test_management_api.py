"""The /api registry routes: listing, aliases, stages and registering by upload.

Changing the registry over HTTP is off by default, so these tests start their servers with
``allow_remote_admin``, except those showing that a default server refuses.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allow_remote_admin=True)


class _Touch:
    """A pickle whose loading creates a file: proof of whether the server unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _upload(
    client: Any, name: str, model_bytes: bytes, filename: str, sample: Any, **form: str
) -> Any:
    files = {"artifact": (filename, io.BytesIO(model_bytes), "application/octet-stream")}
    data = {"sample": json.dumps(sample), **form}
    return client.post(f"/api/models/{name}/versions", files=files, data=data)


def _skops_bytes(model: LogisticRegression, tmp_path: Path) -> bytes:
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    return path.read_bytes()


def test_upload_registers_a_servable_version(
    serve: Any,
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"]) as client:
        created = _upload(
            client,
            "iris",
            _skops_bytes(iris_logreg, tmp_path),
            "model.skops",
            X[:5].tolist(),
            description="uploaded",
            metadata=json.dumps({"metrics": {"accuracy": 0.97}, "tags": {"team": "fraud"}}),
        )
        assert created.status_code == 201, created.text
        version = created.json()
        assert version["version"] == 2
        assert version["metrics"] == {"accuracy": 0.97}
        assert version["signature"]["outputs"][0]["name"] == "label"
        assert len(version["files"]["model.skops"]) == 64
        listed = client.get("/api/models/iris/versions").json()["versions"]
        assert [v["version"] for v in listed] == [1, 2]
        assert client.get("/api/models/iris").json()["latest_version"] == 2
        assert client.get("/api/models").json()["models"][0]["name"] == "iris"
    loaded = modelport.load_model("iris/2", settings=settings)
    assert loaded.predict(X[:7]).tolist() == iris_logreg.predict(X[:7]).tolist()
    assert list((settings.home / "scratch").iterdir()) == []  # scratch folders removed


def test_upload_refuses_pickles_trusted_or_not_and_never_loads_them(
    serve: Any,
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    buffer = io.BytesIO()
    joblib.dump(iris_logreg, buffer)
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Touch(marker))
    with serve(["iris"]) as client:
        refused = _upload(client, "iris", buffer.getvalue(), "model.joblib", X[:5].tolist())
        trusted = _upload(client, "iris", payload, "model.joblib", X[:5].tolist(), trusted="true")
        new_model = _upload(
            client, "fresh", payload, "model.joblib", X[:5].tolist(), trusted="true"
        )
        versions = client.get("/api/models/iris/versions").json()["versions"]
        models = client.get("/api/models").json()["models"]
    assert refused.status_code == 422
    assert refused.json()["code"] == "untrusted_artifact"
    assert (trusted.status_code, trusted.json()["code"]) == (403, "forbidden")
    assert trusted.json()["title"] == "Forbidden"
    assert new_model.status_code == 403
    assert not marker.exists()
    assert [(v["version"], v["trusted"]) for v in versions] == [(1, False)]
    assert [m["name"] for m in models] == ["iris"]


def test_a_default_server_refuses_every_registry_change(
    serve: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    default = make_settings()
    assert default.allow_remote_admin is False
    modelport.log_model(iris_logreg, "iris", X[:10], settings=default)
    marker = tmp_path / "unpickled"
    with serve(["iris"], settings=default) as client:
        answers = [
            _upload(
                client, "iris", _skops_bytes(iris_logreg, tmp_path), "model.skops", X[:5].tolist()
            ),
            _upload(
                client,
                "iris",
                pickle.dumps(_Touch(marker)),
                "model.joblib",
                X[:5].tolist(),
                trusted="true",
            ),
            client.post("/api/models/iris/versions/1/stage", json={"stage": "Production"}),
            client.put("/api/models/iris/aliases/production", json={"version": 1}),
            client.delete("/api/models/iris/aliases/production"),
        ]
        reads = [
            client.get(path)
            for path in (
                "/api/models",
                "/api/models/iris",
                "/api/models/iris/versions",
                "/api/models/iris/versions/1",
                "/api/models/iris/versions/1/stages",
                "/api/models/iris/aliases",
            )
        ]
        schema = client.get("/openapi.json").json()["paths"]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "forbidden"
        assert "MODELPORT_ALLOW_REMOTE_ADMIN" in answer.json()["detail"]
    assert [r.status_code for r in reads] == [200] * len(reads)
    assert not marker.exists()
    version = reads[3].json()
    assert (version["stage"], version["aliases"]) == ("None", [])
    assert reads[2].json()["versions"][-1]["version"] == 1
    alias = schema["/api/models/{name}/aliases/{alias}"]
    assert "403" in alias["put"]["responses"]
    assert alias["put"]["security"][0] == {"bearer": ["deploy"]}
    assert alias["get"]["security"][0] == {"bearer": ["read"]}


def test_upload_input_errors(
    serve: Any,
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    good = _skops_bytes(iris_logreg, tmp_path)
    with serve(["iris"]) as client:
        bad_sample = client.post(
            "/api/models/iris/versions",
            data={"sample": "[[1,"},
            files={"artifact": ("model.skops", io.BytesIO(good))},
        )
        missing_file = client.post("/api/models/iris/versions", data={"sample": "[[1]]"})
        wrong_sample = _upload(client, "iris", good, "model.skops", [[1.0, 2.0]])
        corrupt = _upload(client, "iris", b"not a model", "model.skops", X[:2].tolist())
        unknown_kind = _upload(client, "iris", good, "model.bin", X[:2].tolist())
        bad_name = _upload(client, "bad name!", good, "model.skops", X[:2].tolist())
        # the name is checked before the file is even read: a corrupt one cannot mask it
        bad_name_corrupt = _upload(client, "bad name!", b"junk", "model.skops", [[1]])
        count = len(client.get("/api/models/iris/versions").json()["versions"])
    assert bad_sample.status_code == 422
    assert bad_sample.json()["pointer"] == "/sample"
    assert missing_file.status_code == 422
    assert missing_file.json()["errors"][0]["pointer"] == "/artifact"
    assert wrong_sample.status_code == 422
    assert corrupt.status_code == 422
    assert corrupt.json()["code"] == "model_load_error"
    assert unknown_kind.status_code == 422
    assert unknown_kind.json()["pointer"] == "/artifact"
    assert bad_name.status_code == 422
    assert bad_name_corrupt.status_code == 422
    assert bad_name_corrupt.json()["pointer"] == "/model_name"
    assert count == 1


_DEEP = 5_000  # Python's json raises RecursionError on this; orjson stops at 1,024 levels
_NESTED_TAGS = json.dumps({"tags": {"a": json.loads("[" * 100 + "]" * 100)}})
# (case, artifact file name, sample JSON text, metadata JSON text, status, pointer)
_BAD_UPLOADS = [
    ("tags is a string", "model.skops", None, '{"tags": "prod"}', 422, "/metadata/tags"),
    ("lineage is a list", "model.skops", None, '{"lineage": ["run-1"]}', 422, "/metadata/lineage"),
    ("metrics is null", "model.skops", None, '{"metrics": null}', 422, "/metadata/metrics"),
    ("metadata is a list", "model.skops", None, "[]", 422, "/metadata"),
    ("file named ..", "..", None, "{}", 422, "/artifact"),
    ("file named .", ".", None, "{}", 422, "/artifact"),
    ("file named dir/..", "dir/..", None, "{}", 422, "/artifact"),
    ("file with no name", "", None, "{}", 422, "/artifact"),
    ("sample nested 5000 deep", "model.skops", "[" * _DEEP + "]" * _DEEP, "{}", 422, "/sample"),
    (
        "metadata nested 5000 deep",
        "model.skops",
        None,
        '{"tags": ' + '{"a": ' * _DEEP + "1" + "}" * _DEEP + "}",
        422,
        "/metadata",
    ),
    ("sample nested 100 deep", "model.skops", "[" * 100 + "]" * 100, "{}", 400, "/sample"),
    ("tags nested 100 deep", "model.skops", None, _NESTED_TAGS, 422, "/tags/a"),
    ("ragged sample rows", "model.skops", "[[1, 2], [3]]", "{}", 400, "/sample"),
]


def test_bad_uploads_are_4xx_problems_with_a_pointer(
    serve: Any,
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    good = _skops_bytes(iris_logreg, tmp_path)
    with serve(["iris"]) as client:
        for case, filename, sample, metadata, status, pointer in _BAD_UPLOADS:
            answer = client.post(
                "/api/models/iris/versions",
                files={"artifact": (filename, io.BytesIO(good), "application/octet-stream")},
                data={"sample": sample or json.dumps(X[:3].tolist()), "metadata": metadata},
            )
            assert answer.status_code == status, (case, answer.text)
            assert answer.headers["content-type"] == "application/problem+json", case
            assert answer.json()["pointer"] == pointer, (case, answer.json())
        versions = client.get("/api/models/iris/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1]


def test_alias_routes_move_with_history(
    serve: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    for _ in range(2):
        modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"]) as client:
        assert (
            client.put("/api/models/iris/aliases/production", json={"version": 1}).status_code
            == 200
        )
        assert (
            client.put("/api/models/iris/aliases/production", json={"version": 2}).status_code
            == 200
        )
        current = client.get("/api/models/iris/aliases/production").json()
        history = client.get("/api/models/iris/aliases").json()
        missing_version = client.put("/api/models/iris/aliases/production", json={"version": 9})
        bad_body = client.put("/api/models/iris/aliases/production", json={"version": "x"})
        deleted = client.delete("/api/models/iris/aliases/production")
        gone = client.get("/api/models/iris/aliases/production")
    assert current == {"model": "iris", "alias": "production", "version": 2}
    assert [(e["from_version"], e["to_version"]) for e in history["history"]] == [(None, 1), (1, 2)]
    assert missing_version.status_code == 404
    assert bad_body.status_code == 422
    assert bad_body.json()["pointer"] == "/version"
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.json()["code"] == "alias_not_found"


def test_stage_transitions_are_recorded(
    serve: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"]) as client:
        for stage in ("Staging", "Production"):
            moved = client.post("/api/models/iris/versions/1/stage", json={"stage": stage})
            assert moved.status_code == 200
        invalid = client.post("/api/models/iris/versions/1/stage", json={"stage": "Live"})
        history = client.get("/api/models/iris/versions/1/stages").json()["transitions"]
    assert invalid.status_code == 422
    assert [(t["from_stage"], t["to_stage"]) for t in history] == [
        ("None", "Staging"),
        ("Staging", "Production"),
    ]


def test_unknown_things_are_404_problems(
    serve: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    with serve(["iris"]) as client:
        for path, code in [
            ("/api/models/nope", "model_not_found"),
            ("/api/models/iris/versions/5", "model_version_not_found"),
            ("/api/models/nope/versions", "model_not_found"),
            ("/api/nothing", "not_found"),
        ]:
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == code
        wrong_method = client.delete("/api/models")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
