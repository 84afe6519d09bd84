"""Model addresses: what each accepted spelling means, and clear 422s for the rest."""

from __future__ import annotations

import pytest

from modelport.errors import InvalidInputError
from modelport.registry import ModelAddress
from modelport.registry.address import check_name


@pytest.mark.parametrize(
    ("text", "name", "version", "alias"),
    [
        ("iris", "iris", None, None),
        ("iris/3", "iris", 3, None),
        ("iris/03", "iris", 3, None),
        ("iris@production", "iris", None, "production"),
        ("models:/iris@champion", "iris", None, "champion"),
        ("models:/iris/12", "iris", 12, None),
        ("models:/iris", "iris", None, None),
        ("  fraud-model_v2.1@staging  ", "fraud-model_v2.1", None, "staging"),
        ("iris@latest", "iris", None, None),
        ("models:/iris/latest", "iris", None, None),
        ("a" * 200, "a" * 200, None, None),
    ],
)
def test_parse_accepts(text: str, name: str, version: int | None, alias: str | None) -> None:
    assert ModelAddress.parse(text) == ModelAddress(name, version, alias)


@pytest.mark.parametrize("text", ["iris", "iris/3", "iris@production"])
def test_str_round_trips(text: str) -> None:
    assert str(ModelAddress.parse(text)) == text
    assert str(ModelAddress.parse(f"models:/{text}")) == text


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        ("", "/model"),
        ("   ", "/model"),
        ("iris/", "/model"),
        ("iris@", "/model"),
        ("iris/x", "/model"),
        ("iris/-1", "/model"),
        ("iris/1.5", "/model"),
        ("iris/3@prod", "/model"),
        ("iris@prod/3", "/model"),
        ("iris@prod@x", "/model"),
        ("a/b/c", "/model"),
        ("@prod", "/model"),
        ("/3", "/model"),
        ("models:/", "/model"),
        ("models:/models:/iris", "/model"),
        ("iris@1", "/model"),  # digits are versions, never aliases
        ("iris/99999999999999999999", "/model"),
        ("iris/" + "9" * 5000, "/model"),  # beyond what int() parses at all
        ("-iris", "/model_name"),
        (".iris", "/model_name"),
        ("na me", "/model_name"),
        ("iris\n@prod", "/model_name"),
        ("a" * 201, "/model_name"),
        ("iris@-prod", "/alias"),
        ("iris@pr od", "/alias"),
        ("iris@" + "p" * 101, "/alias"),
    ],
)
def test_parse_rejects(text: str, pointer: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ModelAddress.parse(text)
    assert caught.value.status == 422
    assert caught.value.pointer == pointer
    assert [e.pointer for e in caught.value.errors] == [pointer]


@pytest.mark.parametrize("name", ["iris\n", "iris ", "", "ir/is", "ir@is", "é"])
def test_check_name_is_strict(name: str) -> None:
    """A trailing newline slipped through ``re.match(...$)``; names are matched whole."""
    with pytest.raises(InvalidInputError):
        check_name(name)


def test_alias_names_are_limited_to_their_column() -> None:
    assert check_name("p" * 100, "alias") == "p" * 100
    with pytest.raises(InvalidInputError, match="at most 100"):
        check_name("p" * 101, "alias")
