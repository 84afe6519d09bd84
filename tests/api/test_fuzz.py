"""Schemathesis against our own OpenAPI document, every operation, with and without a key.

Each operation, the inference routes included (their bodies as the document declares them),
gets generated requests; every answer must be no 5xx, match the schema the document gives for
its status (status code and media type documented), and be problem+json carrying its own status
when it is a 401, 403 or 429.

The suite runs a small derandomized profile; ``make fuzz`` sets ``MODELPORT_FUZZ_EXAMPLES``
for a longer one (read at import: the autouse fixture clears ``MODELPORT_*`` per test).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelport.config import AuthMode, Settings
from modelport.registry import Registry
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from modelport.serving import create_app

EXAMPLES = int(os.environ.get("MODELPORT_FUZZ_EXAMPLES", "5"))
PROBLEM_JSON = "application/problem+json"
SERVED = {"name": "iris", "version": "1"}


def auth_errors_are_problems(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """A refusal (401/403/429) is RFC 9457 problem+json whose ``status`` is the HTTP one."""
    if response.status_code not in (401, 403, 429):
        return
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media_type == PROBLEM_JSON, f"{response.status_code} answered as {media_type!r}"
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, body
    assert body.get("title"), body


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    auth_errors_are_problems,
]


class Tally:
    """Requests sent per operation and statuses seen (``make fuzz`` prints them)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.started = time.monotonic()

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"fuzz[{self.label}]: {len(self.calls)} operations, "
            f"{sum(self.calls.values())} requests in {seconds:.1f} s ({statuses})"
        )


@dataclass(frozen=True)
class Fuzzing:
    schema: BaseSchema
    headers: dict[str, str]
    """Sent with every generated request (a key, or nothing)."""
    tally: Tally


@pytest.fixture(params=["admin key", "no key"])
def fuzzing(
    request: pytest.FixtureRequest, settings: Settings, iris_served: np.ndarray
) -> Iterator[Fuzzing]:
    """The app with keys required serving iris/1, its own document loaded from it."""
    # the fuzzer's client sends Host: testserver; the host check has its own tests
    secured = settings.model_copy(
        update={"auth": AuthMode.REQUIRED, "allow_remote_admin": False, "allowed_hosts": ["*"]}
    )
    headers: dict[str, str] = {}
    if request.param == "admin key":
        registry = Registry.from_settings(secured)
        try:
            store = KeyStore(registry.database, KeyHasher(lambda: server_secret(secured)))
            token = store.create(Scope.ADMIN).token
        finally:
            registry.close()
        headers["Authorization"] = f"Bearer {token}"
    app = create_app(secured, ["iris"], metrics_registry=CollectorRegistry())
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield Fuzzing(schema, headers, Tally(request.param))
    finally:
        # schemathesis started the app's lifespan with its first request; this ends it
        asgi.shutdown_lifespans()


def test_every_operation_survives_generated_requests(fuzzing: Fuzzing) -> None:
    failures: list[str] = []
    for result in fuzzing.schema.get_all_operations():
        operation = result.ok()
        # random names mostly meet 404s; the served model's also reach codecs and the runtime
        known = {k: v for k, v in SERVED.items() if "{" + k + "}" in operation.path}
        for mode, pinned in product(GenerationMode, [{}, known] if known else [{}]):
            try:
                _fuzz(operation, mode, pinned, fuzzing)
            except Unsatisfiable:
                # nothing to get wrong (no parameters, no body): only valid requests exist
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (AssertionError, ExceptionGroup) as exc:
                failures.append(f"{mode} {operation.label} {pinned}: {exc}")
    print(fuzzing.tally.summary())  # shown by `pytest -rA` (make fuzz)
    assert len(fuzzing.tally.calls) >= 30, fuzzing.tally.summary()
    assert not failures, "\n\n".join(failures)


def _fuzz(
    operation: APIOperation, mode: GenerationMode, path: dict[str, str], fuzzing: Fuzzing
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # no `explain`: on a failing negative case it ran for minutes, to annotate the report
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(headers=dict(fuzzing.headers))
        fuzzing.tally.calls[operation.label] += 1
        fuzzing.tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # a BaseExceptionGroup, which Hypothesis would not shrink
            raise AssertionError(str(group)) from None

    fuzz()
