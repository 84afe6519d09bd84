"""The data plane seen from HTTP: request ids, wrong methods, bounded errors, hostile numbers."""

from __future__ import annotations

import asyncio
import gc
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from modelport.config import Settings
from modelport.serving import create_app
from modelport.serving.http.app import FIRST_GENERATION_GC, SWITCH_INTERVAL_S

REQUEST_ID = "x-request-id"


def test_every_response_carries_a_request_id(serve: Any, iris_served: np.ndarray) -> None:
    body = {"instances": iris_served[:1].tolist()}
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with serve(["iris"]) as client:
        given = client.post("/v1/models/iris:predict", json=body, headers={REQUEST_ID: "abc-1"})
        traced = client.post("/v1/models/iris:predict", json=body, headers={"traceparent": trace})
        fresh = [
            client.post("/v1/models/iris:predict", json=body).headers[REQUEST_ID] for _ in range(2)
        ]
        unsafe = client.get("/healthz", headers={REQUEST_ID: "x" * 500})
        failed = client.post("/v2/models/ghost/infer", content=b"{}", headers={REQUEST_ID: "abc-2"})
        api = client.get("/api/models", headers={REQUEST_ID: "abc-3"})
    assert given.headers[REQUEST_ID] == "abc-1"
    assert traced.headers[REQUEST_ID] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert fresh[0] != fresh[1]
    assert all(len(f) == 32 for f in fresh)
    assert unsafe.headers[REQUEST_ID] != "x" * 500
    assert failed.headers[REQUEST_ID] == failed.json()["request_id"] == "abc-2"
    assert api.headers[REQUEST_ID] == "abc-3"


def test_a_request_in_a_trace_answers_with_the_server_span(
    serve: Any, iris_served: np.ndarray
) -> None:
    body = {"instances": iris_served[:1].tolist()}
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced = {"traceparent": f"00-{trace_id}-{parent}-01"}
    with serve(["iris"]) as client:
        answers = [client.post("/v1/models/iris:predict", json=body, headers=traced)]
        answers.append(client.post("/v1/models/iris:predict", json=body, headers=traced))
        answers.append(client.get("/api/models", headers=traced))
        answers.append(client.post("/v2/models/ghost/infer", json={}, headers=traced))
        broken = client.post(
            "/v1/models/iris:predict", json=body, headers={"traceparent": f"00-{trace_id}-x-01"}
        )
    spans = []
    for answer in answers:
        version, trace, span, flags = answer.headers["traceresponse"].split("-")
        assert (version, trace, flags) == ("00", trace_id, "01")
        spans.append(span)
    assert len(set(spans)) == len(spans)
    assert parent not in spans
    assert "traceresponse" not in broken.headers
    assert broken.headers[REQUEST_ID] != trace_id


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/iris:predict",
        "/v2/models/iris/infer",
        "/invocations",
        "/models/iris/invocations",
    ],
)
def test_get_on_an_inference_route_is_405(serve: Any, iris_served: np.ndarray, path: str) -> None:
    with serve(["iris"]) as client:
        answer = client.get(path)
    assert answer.status_code == 405, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "method_not_allowed"


def test_many_unknown_inputs_get_a_short_answer(serve: Any, iris_served: np.ndarray) -> None:
    columns = {f"f{i}": [1.0] for i in range(3000)}
    too_many = {f"f{i}": [1.0] for i in range(100_000)}
    with serve(["iris"]) as client:
        listed = client.post("/v1/models/iris:predict", json={"inputs": columns})
        refused = client.post("/v1/models/iris:predict", json={"inputs": too_many})
        csv = client.post(
            "/invocations",
            content=",".join(f"c{i}" for i in range(300_000)).encode()
            + b"\n"
            + b"1," * 299_999
            + b"1\n",
            headers={"content-type": "text/csv"},
        )
    assert listed.status_code == 422
    assert len(listed.content) < 10_000
    assert "3001 problems in all" in listed.json()["detail"]
    assert len(listed.json()["errors"]) == 20
    for answer in (refused, csv):
        assert answer.status_code == 400, answer.text[:300]
        assert len(answer.content) < 2_000
        assert "at most 4096" in answer.json()["detail"]


@pytest.mark.parametrize("length", ["\u0661\u0662", "\u00b2", "1" * 5000, "-1", " "])
def test_header_lengths_that_are_not_byte_counts_are_400(
    serve: Any, iris_served: np.ndarray, length: str
) -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    )
    with serve(["iris"]) as client:
        answer = client.post(
            "/v2/models/iris/infer",
            content=body,
            headers={"Inference-Header-Content-Length": length.encode()},
        )
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/iris/versions/{v}/infer",
        "/v2/models/iris/versions/{v}",
        "/v2/models/iris/versions/{v}/ready",
        "/v1/models/iris/versions/{v}:predict",
    ],
)
def test_absurd_version_segments_are_404(serve: Any, iris_served: np.ndarray, path: str) -> None:
    with serve(["iris"]) as client:
        url = path.format(v="9" * 5000)
        answer = (
            client.post(url, content=b"{}")
            if "infer" in url or "predict" in url
            else client.get(url)
        )
    assert answer.status_code == 404, answer.text[:300]


def test_the_api_docs_need_no_network(serve: Any) -> None:
    with serve([]) as client:
        page = client.get("/docs")
        assets = re.findall(r"""(?:src|href)=['"](/[^'"]+\.(?:js|css))['"]""", page.text)
        fetched = {asset: client.get(asset) for asset in assets}
    assert page.status_code == 200
    assert len(assets) == 2
    assert all(a.status_code == 200 and len(a.content) > 10_000 for a in fetched.values())
    assert "cdn" not in page.text.lower()


def test_every_exported_metric_and_label_is_documented(serve: Any, iris_served: np.ndarray) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    documented = {}
    for line in (Path(__file__).parents[2] / "docs" / "metrics.md").read_text().splitlines():
        if line.startswith("| `modelport_"):
            cells = line.split("|")
            documented[cells[1].strip(" `")] = cells[3]
    with serve(["iris"]) as client:
        client.post("/v1/models/iris:predict", json={"instances": iris_served[:2].tolist()})
        client.get("/v1/models/ghost")
        text = client.get("/metrics").text
    families = list(text_string_to_metric_families(text))
    seen = {f.name for f in families if f.name.startswith("modelport_")}
    assert seen
    for family in families:  # *_created: prometheus_client's creation timestamps
        if not family.name.startswith("modelport_") or family.name.endswith("_created"):
            continue
        exported = family.name + ("_total" if family.type == "counter" else "")
        assert exported in documented, f"{exported} missing from docs/metrics.md"
        for sample in family.samples:
            for label in set(sample.labels) - {"le"}:
                assert f"`{label}`" in documented[exported], (exported, label)


def test_a_large_body_is_parsed_off_the_event_loop(
    settings: Settings, iris_served: np.ndarray
) -> None:
    """While a 10 MB CSV is parsed and checked, the liveness probe still answers.

    The CSV's last cell is not a number, so the request ends in the codec (no model call
    that would yield the loop anyway): only decoding on a thread lets the probe through first.
    """
    rows = np.tile(iris_served, (4000, 1))
    csv = ("a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n1,2,3,x").encode()
    assert len(csv) > 8_000_000
    app = create_app(settings, ["iris"], metrics_registry=CollectorRegistry())
    finished: list[str] = []

    async def main() -> None:
        async with app.app.router.lifespan_context(app.app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:

                async def big() -> None:
                    answer = await client.post(
                        "/invocations", content=csv, headers={"content-type": "text/csv"}
                    )
                    assert answer.status_code == 422
                    assert "(row 600000)" in answer.json()["detail"]
                    finished.append("csv")

                async def probe() -> None:
                    await asyncio.sleep(0.05)  # the CSV request is being parsed by now
                    assert (await client.get("/healthz")).status_code == 200
                    finished.append("healthz")

                await asyncio.gather(big(), probe())

    asyncio.run(main())
    assert finished == ["healthz", "csv"]


def test_a_serving_process_tunes_its_interpreter(serve: Any, iris_served: np.ndarray) -> None:
    gc.set_threshold(700, 10, 10)  # Python's defaults, whatever an earlier test left
    sys.setswitchinterval(0.005)
    with serve(["iris"]):
        assert gc.get_threshold() == (FIRST_GENERATION_GC, 10, 10)
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
