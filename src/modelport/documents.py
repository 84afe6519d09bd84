"""Resource documents in the Kubernetes habit (``apiVersion``, ``kind``, ``metadata``, ``spec``),
read from YAML streams or JSON bodies, with every problem located.

Each kind (a ModelDeployment, an Experiment) brings a ``Validator``: the decoded document in,
its spec or its problems out. This module does what all kinds share: one YAML stream may hold
several documents of several kinds (``modelport apply -f``); a problem is reported by JSON
pointer and dotted path, and in YAML by line; keys given twice are problems, not silently the
last; all problems of all documents are reported at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Protocol, get_args

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from modelport.durations import parse_duration
from modelport.errors import FieldError, InvalidInputError
from modelport.registry.address import ModelAddress

FieldPath = tuple[str | int, ...]
"""Where a problem is: keys and list indexes from the document's root."""
Problem = tuple[FieldPath, str]


class Shape(BaseModel):
    """A document (or part of one) as typed, before the rules that span fields; strict, so
    that a quoted ``"50"`` is not quietly taken for a number."""

    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, allow_inf_nan=False
    )


def _seconds(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return parse_duration(value).total_seconds()
    except InvalidInputError:
        message = f"{value!r} is not a duration: write 30s, 5m, 1h or a number of seconds"
    except OverflowError:  # beyond what timedelta holds
        message = f"{value!r} is longer than 30 days"
    raise PydanticCustomError("duration", message)


def _model_reference(text: str) -> str:
    try:
        return str(ModelAddress.parse(text))
    except InvalidInputError as exc:
        raise PydanticCustomError("model_reference", exc.detail) from None


def _matching(pattern: str, message: str) -> AfterValidator:
    def matches(text: str) -> str:
        if re.fullmatch(pattern, text) is None:
            raise PydanticCustomError("pattern", message)
        return text

    return AfterValidator(matches)


Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0, le=30 * 86_400)]
"""A duration: ``30s``, ``5m``, ``1h`` or a number of seconds; at most 30 days."""
Percent = Annotated[float, Field(ge=0, le=100)]
Share = Annotated[float, Field(ge=0, le=1)]
Label = Annotated[
    str,
    _matching(
        r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        "must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit",
    ),
]
ModelReference = Annotated[str, AfterValidator(_model_reference)]


class Metadata(Shape):
    name: Label
    labels: dict[
        Annotated[str, Field(min_length=1, max_length=63)], Annotated[str, Field(max_length=200)]
    ] = Field(default_factory=dict, max_length=64)


class Named(Protocol):
    @property
    def name(self) -> str: ...


Validator = Callable[[object], "Named | list[Problem]"]


def parse(document: object, validate: Validator, *, source: str = "request") -> Named:
    """One decoded JSON body; every problem becomes one ``FieldError``."""
    result = validate(document)
    if not isinstance(result, list):
        return result
    errors = [FieldError(pointer(path), message) for path, message in result]
    raise _invalid(errors, [_located(source, path, message) for path, message in result])


def load_yaml(text: str, validators: Mapping[str, Validator], *, source: str) -> list[Named]:
    """Every document of a YAML stream (``---`` between them, empty ones skipped), each checked
    by the validator of its ``kind``; a name may appear once per kind."""
    documents = [composed for composed in _compose(text, source) if composed[2] is not None]
    kinds = " or ".join(validators)
    if not documents:
        raise InvalidInputError(f"{source} holds no {kinds} document")
    specs: list[Named] = []
    errors: list[FieldError] = []
    defined: dict[tuple[str, str], int] = {}
    for number, node, data, problems in documents:
        where = f"{source} (document {number})" if len(documents) > 1 else source
        kind = data.get("kind") if isinstance(data, dict) else None
        validate = validators.get(kind) if isinstance(kind, str) else None
        if validate is None:
            expected = " or ".join(repr(known) for known in validators)
            problems.append((("kind",), f"must be {expected}"))
            result: Named | list[Problem] = []
        else:
            result = validate(data)
        if isinstance(result, list):
            problems.extend(result)
        elif defined.setdefault((str(kind), result.name), number) != number:
            message = f"document {defined[str(kind), result.name]} defines {result.name!r} already"
            problems.append((("metadata", "name"), message))
        else:
            specs.append(result)
        for path, message in problems:
            located = _located(f"{where}:{_line(node, path)}", path, message)
            errors.append(FieldError(pointer(path), located))
    if errors:
        raise _invalid(errors, [error.message for error in errors])
    return specs


def pointer(path: FieldPath) -> str:
    """RFC 6901: ``/spec/slots/1/weight``, with ``~`` and ``/`` in keys escaped."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _located(where: str, path: FieldPath, message: str) -> str:
    """``where: spec.slots[1].weight: message``."""
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}"


def _invalid(errors: list[FieldError], texts: list[str]) -> InvalidInputError:
    more = f" (and {len(texts) - 1} more)" if len(texts) > 1 else ""
    return InvalidInputError(texts[0] + more, errors=errors)


_Composed = tuple[int, yaml.Node, object, list[Problem]]


def _compose(text: str, source: str) -> list[_Composed]:
    """Each document's number, node tree (for line numbers), data and duplicate keys; the
    duplicates are found before construction, which merges ``<<`` keys into the tree."""
    constructor = yaml.SafeLoader("")  # SafeLoader: plain data, never Python objects
    documents: list[_Composed] = []
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            duplicates = list(_duplicate_keys(node, (), set()))
            data = constructor.construct_document(node)
            documents.append((len(documents) + 1, node, data, duplicates))
    except yaml.YAMLError as exc:
        number = len(documents) + 1
        where = source if number == 1 else f"{source} (document {number})"
        mark = getattr(exc, "problem_mark", None)
        line = "" if mark is None else f":{mark.line + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInputError(f"{where}{line}: not valid YAML: {problem}", pointer="") from exc
    finally:
        constructor.dispose()
    return documents


def _duplicate_keys(node: yaml.Node, path: FieldPath, seen: set[int]) -> Iterator[Problem]:
    """A key given twice, which YAML would settle silently by keeping the last."""
    if id(node) in seen:  # an alias: its anchor was walked already (and may contain it)
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, i), seen)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[object, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in lines:
                    message = (
                        f"duplicate key (also on line {lines[key.value]}); YAML keeps the last"
                    )
                    yield (*path, key.value), message
                lines.setdefault(key.value, key.start_mark.line + 1)
            yield from _duplicate_keys(value, (*path, str(key.value)), seen)


def _line(node: yaml.Node, path: FieldPath) -> int:
    """The line of the deepest node on ``path`` (a missing key is reported at its parent).
    Of a duplicated key, the last counts: it is the one the data holds."""
    mark = node.start_mark
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pairs = (pair for pair in reversed(node.value) if pair[0].value == str(part))
            pair = next(pairs, None)
            if pair is None:
                break
            mark, node = pair[0].start_mark, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return mark.line + 1


def shape_problem(error: ErrorDetails, root: type[BaseModel]) -> Problem:
    """Pydantic's complaint in this module's words (``must be ...``, ``did you mean ...``)."""
    path = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return path, _unknown_key(path, root)
    if error["type"] == "missing":
        return path, "required"
    if error["type"] == "model_type":
        return path, "must be a mapping"
    message = re.sub(r"^(Input|String|List|Dictionary) should", "must", error["msg"])
    return path, message.replace(" after validation", "")


def _unknown_key(path: FieldPath, root: type[BaseModel]) -> str:
    model = root
    for part in path[:-1]:
        if isinstance(part, str):
            annotation = next(f.annotation for f in model.model_fields.values() if f.alias == part)
            model = next(
                t
                for t in get_args(annotation) or (annotation,)
                if isinstance(t, type) and issubclass(t, BaseModel)
            )
    known = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; expected one of {', '.join(known)}"
