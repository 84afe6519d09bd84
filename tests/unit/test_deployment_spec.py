"""ModelDeployment documents: round trips, defaults, and one located error per broken rule."""

from __future__ import annotations

import pytest
import yaml

from modelport.errors import FieldError, InvalidInputError
from modelport.rollout.gates import GateLimits
from modelport.rollout.spec import (
    DEFAULT_STEPS,
    DeploymentSpec,
    OnBreach,
    Role,
    SlotSpec,
    Sticky,
    Strategy,
    load_yaml,
    parse_document,
)

FULL_CANARY = """\
apiVersion: modelport/v1
kind: ModelDeployment
metadata:
  name: fraud
  labels: {team: risk, app.example.com/tier: gold}
spec:
  strategy: canary
  slots:
    - model: fraud@production
      role: primary
    - model: models:/fraud/8
      role: canary
    - name: mirror
      model: fraud@challenger
      role: shadow
      weight: 20
  steps: [10, 50.5, 100]
  stepInterval: 2m
  minRequests: 500
  evaluationInterval: 7.5
  gates:
    maxErrorRate: 0.01
    maxP99Ms: 250
    maxP99Increase: 0.2
    maxShadowDisagreement: 0.05
    maxPredictionDrift: 0.1
    window: 1h
  rollback: {onBreach: pause}
  sticky: {field: customer_id}
  warmup: {requests: 20}
"""

# one slot of each role, as a line of ``slots:``
P = "- {model: fraud@production, role: primary}"
C = "- {model: fraud/8, role: canary}"
S = "- {model: fraud@challenger, role: shadow}"


def manifest(strategy: str, *slots: str, extra: tuple[str, ...] = ()) -> str:
    """Lines 1-5 the header, 6 the strategy, 7 ``slots:``, slot i on line 8 + i, then extra."""
    header = "apiVersion: modelport/v1\nkind: ModelDeployment\nmetadata:\n  name: fraud\nspec:\n"
    lines = [f"strategy: {strategy}", "slots:", *(f"  {slot}" for slot in slots), *extra]
    return header + "".join(f"  {line}\n" for line in lines)


def weighted(slot: str, weight: float | str) -> str:
    return slot.replace("}", f", weight: {weight}}}")


def named(slot: str, name: str) -> str:
    return slot.replace("{", f"{{name: {name}, ")


def yaml_error(text: str) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        load_yaml(text)
    return caught.value


def test_a_full_canary_document_reads_as_written() -> None:
    [spec] = load_yaml(FULL_CANARY)
    assert spec == DeploymentSpec(
        name="fraud",
        strategy=Strategy.CANARY,
        slots=(
            SlotSpec("primary", "fraud@production", Role.PRIMARY, 100.0),
            SlotSpec("canary", "fraud/8", Role.CANARY, 0.0),
            SlotSpec("mirror", "fraud@challenger", Role.SHADOW, 20.0),
        ),
        steps=(10.0, 50.5, 100.0),
        step_interval_s=120.0,
        min_requests=500,
        evaluation_interval_s=7.5,
        window_s=3600.0,
        gates=GateLimits(0.01, 250.0, 0.2, 0.05, 0.1),
        on_breach=OnBreach.PAUSE,
        sticky=Sticky(field="customer_id"),
        warmup_requests=20,
        labels={"team": "risk", "app.example.com/tier": "gold"},
    )
    assert spec.primary.name == "primary"
    assert spec.canary is not None
    assert spec.canary.model == "fraud/8"
    assert spec.shadow == spec.slot("mirror")
    with pytest.raises(KeyError):
        spec.slot("blue")


@pytest.mark.parametrize(
    "text",
    [
        FULL_CANARY,
        manifest("canary", P, C),
        manifest("direct", P),
        manifest(
            "direct",
            weighted(P, 70),
            named(weighted(C, 20), "b"),
            named(weighted(C, 10), "c"),
            S,
        ),
        manifest("blue-green", P, C, extra=("sticky: {field: customer}",)),
        manifest("shadow", P, S, extra=("gates: {maxShadowDisagreement: 0.1}",)),
    ],
)
def test_the_canonical_document_round_trips_as_json_and_as_yaml(text: str) -> None:
    [spec] = load_yaml(text)
    document = spec.to_document()
    assert parse_document(document) == spec
    assert load_yaml(yaml.safe_dump(document)) == [spec]


def test_defaults() -> None:
    [spec] = load_yaml(manifest("canary", P, C, S))
    assert [(s.name, s.weight) for s in spec.slots] == [
        ("primary", 100.0),
        ("canary", 0.0),
        ("shadow", 100.0),
    ]
    assert spec.steps == DEFAULT_STEPS == (1, 5, 25, 50, 100)
    assert (spec.step_interval_s, spec.window_s, spec.evaluation_interval_s) == (300, 300, 10)
    assert (spec.min_requests, spec.warmup_requests) == (100, 1)
    assert (spec.gates, spec.on_breach, spec.sticky) == (GateLimits(), OnBreach.ROLLBACK, Sticky())
    assert spec.labels == {}
    [direct] = load_yaml(manifest("direct", P))
    assert (direct.steps, direct.primary.weight, direct.canary) == ((), 100.0, None)


def assert_one_problem(text: str, pointer: str, line: int, words: str) -> None:
    error = yaml_error(text)
    [problem] = error.errors
    assert problem.pointer == pointer
    assert problem.message.startswith(f"deployment.yaml:{line}: ")
    assert words in problem.message
    assert error.detail == problem.message


P50 = weighted(P, 50)


@pytest.mark.parametrize(
    ("strategy", "slots", "pointer", "line", "words"),  # slot i is on line 8 + i
    [
        ("direct", (P50, named(P50, "b")), "/spec/slots/1/role", 9, "one primary slot too many"),
        ("direct", (C,), "/spec/slots", 7, "missing slot: a direct deployment has exactly one"),
        ("direct", (P, S, named(S, "s2")), "/spec/slots/2/role", 10, "at most one shadow slot"),
        ("canary", (P,), "/spec/slots", 7, "a canary deployment has exactly one canary slot"),
        ("canary", (P, C, named(C, "c2")), "/spec/slots/2/role", 10, "one canary slot too many"),
        ("blue-green", (P,), "/spec/slots", 7, "exactly one canary slot (the new colour)"),
        ("shadow", (P,), "/spec/slots", 7, "a shadow deployment has exactly one shadow slot"),
        ("shadow", (weighted(P, 100), S, weighted(C, 0)), "/spec/slots/2/role", 10, "no canary"),
        ("direct", (P50, weighted(C, 50), weighted(C, 0)), "/spec/slots/2/name", 10, "slot 1 is"),
        ("direct", ("- {model: a/b/c, role: primary}",), "/spec/slots/0/model", 8, "'a/b/c'"),
        ("direct", ("- {role: primary}",), "/spec/slots/0/model", 8, "required"),
        ("direct", (weighted(P, 150),), "/spec/slots/0/weight", 8, "less than or equal to 100"),
        ("direct", (weighted(P, "'50'"),), "/spec/slots/0/weight", 8, "must be a valid number"),
        ("direct", (weighted(P, 60), weighted(C, 30)), "/spec/slots", 7, "sum to 90, not 100"),
        ("direct", (P, weighted(C, 10)), "/spec/slots/0/weight", 8, "required when several"),
        ("direct", (P, weighted(S, 0)), "/spec/slots/1/weight", 9, "must be above 0"),
        ("canary", (P, weighted(C, 10)), "/spec/slots/1/weight", 9, "the canary steps decide"),
        ("blue-green", (weighted(P, 100), C), "/spec/slots/0/weight", 8, "the blue-green switch"),
    ],
)
def test_slot_rules(
    strategy: str, slots: tuple[str, ...], pointer: str, line: int, words: str
) -> None:
    assert_one_problem(manifest(strategy, *slots), pointer, line, words)


SLOTS = {"direct": (P,), "canary": (P, C), "blue-green": (P, C), "shadow": (P, S)}


@pytest.mark.parametrize(
    ("strategy", "extra", "pointer", "line", "words"),  # extra starts on line 8 + len(slots)
    [
        ("canary", "steps: [5, 5, 100]", "/spec/steps/1", 10, "above the step before it (5)"),
        ("canary", "steps: [5, 50]", "/spec/steps", 10, "must end with 100"),
        ("canary", "steps: [0, 100]", "/spec/steps/0", 10, "must be greater than 0"),
        ("blue-green", "steps: [50, 100]", "/spec/steps", 10, "only a canary deployment"),
        ("direct", "stepInterval: 1m", "/spec/stepInterval", 9, "only a canary deployment"),
        ("shadow", "minRequests: 5", "/spec/minRequests", 10, "only a canary deployment"),
        ("canary", "stepInterval: 5 minutes", "/spec/stepInterval", 10, "is not a duration"),
        ("canary", "evaluationInterval: 0", "/spec/evaluationInterval", 10, "greater than 0"),
        ("canary", "stepInterval: 31d", "/spec/stepInterval", 10, "less than or equal to 2592000"),
        ("canary", "stepInterval: 99999999999999999h", "/spec/stepInterval", 10, "than 30 days"),
        ("direct", "gates: {maxErrorRate: 0.1}", "/spec/gates/maxErrorRate", 9, "only a canary"),
        ("canary", "gates:\n  maxErrorRate: 2", "/spec/gates/maxErrorRate", 11, "or equal to 1"),
        ("canary", "gates: {maxP99Ms: 0}", "/spec/gates/maxP99Ms", 10, "must be greater than 0"),
        ("canary", "gates: {maxP99Increase: -1}", "/spec/gates/maxP99Increase", 10, "equal to 0"),
        ("shadow", "gates: {maxP99Ms: 5}", "/spec/gates/maxP99Ms", 10, "only a canary deployment"),
        (
            "canary",
            "gates: {maxShadowDisagreement: 1}",
            "/spec/gates/maxShadowDisagreement",
            10,
            "needs a shadow",
        ),
        ("direct", "gates: {window: 5m}", "/spec/gates/window", 9, "no gate applies"),
        ("direct", "sticky: {header: X-Unit}", "/spec/sticky/header", 9, "unknown field"),
        ("direct", "warmup: {requests: 20000}", "/spec/warmup/requests", 9, "equal to 10000"),
        ("direct", "rollback: {onBreach: retry}", "/spec/rollback/onBreach", 9, "'rollback' or"),
    ],
)
def test_option_rules(strategy: str, extra: str, pointer: str, line: int, words: str) -> None:
    text = manifest(strategy, *SLOTS[strategy], extra=tuple(extra.splitlines()))
    assert_one_problem(text, pointer, line, words)


@pytest.mark.parametrize(
    ("written", "wrong", "pointer", "line", "words"),
    [
        ("name: fraud", "name: Fraud_1", "/metadata/name", 4, "must be a DNS-1123 label"),
        ("modelport/v1", "v1", "/apiVersion", 1, "must be 'modelport/v1'"),
        ("kind: ModelDeployment", "kind: Deployment", "/kind", 2, "must be 'ModelDeployment'"),
    ],
)
def test_header_rules(written: str, wrong: str, pointer: str, line: int, words: str) -> None:
    assert_one_problem(manifest("direct", P).replace(written, wrong), pointer, line, words)


def test_a_json_body_reports_pointers_and_dotted_paths() -> None:
    [spec] = load_yaml(manifest("direct", P))
    document = spec.to_document()
    document["spec"]["slots"].append({"name": "b", "model": "b", "role": "canary", "weight": 150})
    document["spec"]["stratgy"] = "direct"
    with pytest.raises(InvalidInputError) as caught:
        parse_document(document)
    assert caught.value.errors == [
        FieldError("/spec/slots/1/weight", "must be less than or equal to 100"),
        FieldError("/spec/stratgy", "unknown field; did you mean 'strategy'?"),
    ]
    assert caught.value.detail == (
        "request: spec.slots[1].weight: must be less than or equal to 100 (and 1 more)"
    )
    with pytest.raises(InvalidInputError, match=r"^request: must be a mapping$"):
        parse_document([spec.to_document()])


TYPO_BASE = manifest("canary", P, C, extra=("stepInterval: 5m", "gates: {maxP99Ms: 9}"))


@pytest.mark.parametrize(
    ("written", "typo", "pointer", "line", "meant"),
    [
        ("strategy:", "stratgy:", "/spec/stratgy", 6, "strategy"),
        ("model: fraud/8", "modle: fraud/8", "/spec/slots/1/modle", 9, "model"),
        ("stepInterval", "step_interval", "/spec/step_interval", 10, "stepInterval"),
        ("maxP99Ms", "maxP99ms", "/spec/gates/maxP99ms", 11, "maxP99Ms"),
    ],
)
def test_an_unknown_key_suggests_the_one_meant(
    written: str, typo: str, pointer: str, line: int, meant: str
) -> None:
    errors = yaml_error(TYPO_BASE.replace(written, typo)).errors
    [unknown] = [error for error in errors if error.pointer == pointer]
    assert unknown.message.startswith(f"deployment.yaml:{line}: spec.")
    assert unknown.message.endswith(f": unknown field; did you mean {meant!r}?")


def test_several_documents_each_located() -> None:
    first = manifest("direct", P)
    second = manifest("canary", P, C).replace("name: fraud", "name: fraud-canary")
    specs = load_yaml(f"---\n{first}---\n---\n{second}")  # the empty document is skipped
    assert [spec.name for spec in specs] == ["fraud", "fraud-canary"]
    broken = second.replace("fraud/8", "fraud/8, weight: 5")
    error = yaml_error(f"{first}---\n{broken}")
    # the second document starts on line 10: its canary slot is on its line 9, the file's 18
    assert error.detail == (
        "deployment.yaml (document 2):18: spec.slots[1].weight: the canary steps decide the "
        "weights of a canary deployment; leave it out"
    )
    error = yaml_error(f"{first}---\n{first}")
    assert error.errors[0].message == (
        "deployment.yaml (document 2):13: metadata.name: document 1 defines 'fraud' already"
    )


def test_yaml_syntax_errors_and_unsafe_tags_report_their_line() -> None:
    assert yaml_error("apiVersion: modelport/v1\nkind: [ModelDeployment\n").detail.startswith(
        "deployment.yaml:3: not valid YAML: "
    )
    error = yaml_error("kind: !!python/object/apply:os.system ['true']\n")
    assert error.detail.startswith("deployment.yaml:1: not valid YAML: ")
    assert yaml_error("# nothing here\n---\n").detail == (
        "deployment.yaml holds no ModelDeployment document"
    )


def test_a_duplicated_key_is_an_error_not_the_last_one_winning() -> None:
    text = manifest("direct", P, extra=("warmup:", "  requests: 5", "  requests: 6"))
    assert yaml_error(text).detail == (
        "deployment.yaml:11: spec.warmup.requests: duplicate key (also on line 10); "
        "YAML keeps the last"
    )


@pytest.mark.parametrize(
    ("written", "seconds", "canonical"),
    [
        ("30s", 30, "30s"),
        ("90", 90, "90s"),
        ("5m", 300, "5m"),
        ("1h", 3600, "1h"),
        ("0.5", 0.5, 0.5),
        ("2.5m", 150, "150s"),
    ],
)
def test_durations(written: str, seconds: float, canonical: str | float) -> None:
    [spec] = load_yaml(manifest("canary", P, C, extra=(f"stepInterval: {written}",)))
    assert spec.step_interval_s == seconds == spec.window_s
    assert spec.to_document()["spec"]["stepInterval"] == canonical


def test_sizes_are_bounded() -> None:
    [spec] = load_yaml(manifest("direct", P))
    document = spec.to_document()
    document["spec"]["slots"] = [
        {"name": f"s{i}", "model": "fraud", "role": "canary", "weight": 5} for i in range(20)
    ]
    document["metadata"]["labels"] = {f"k{i}": "v" for i in range(100)}
    with pytest.raises(InvalidInputError) as caught:
        parse_document(document)
    problems = {e.pointer: e.message for e in caught.value.errors}
    assert problems["/spec/slots"] == "must have at most 16 items, not 20"
    assert "at most 64 items" in problems["/metadata/labels"]
