"""The editable part of a model card, stored under one reserved key of the version's tags.

Why tags and not a column of its own: the fields are free text a person writes about one
version (intended use, limitations, training data, ethical considerations, owners), read
whole and written whole. Version tags are already a JSON column on SQLite and PostgreSQL
alike, already shown by `versions --json` and the API, and every change to them already goes
through the audit log; a new column would need a migration on every registry for no query we
would run on it. The key is namespaced (``modelport.card``) so it cannot clash with a
user's own tags; a value there that is not a card (set by hand) reads as an empty card.

An edit reads and writes the tag in one write transaction, so two people editing different
fields at once both keep their change, and is audited as ``version.card``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelport.errors import InvalidInputError
from modelport.registry.audit import Actor, append
from modelport.registry.records import VersionRecord
from modelport.registry.registry import Registry, version_row

CARD_TAG = "modelport.card"
TEXT_FIELDS = ("intended_use", "limitations", "training_data", "ethical_considerations")
"""The card's free-text fields, in the order a card shows them."""
EDITABLE = (*TEXT_FIELDS, "owners")
MAX_TEXT = 20_000
"""Characters per field: pages of prose, far below what a JSON column or a page can hold."""
MAX_OWNERS = 50


@dataclass(frozen=True, slots=True)
class CardFields:
    """What people write about a version; empty strings and no owners when unwritten."""

    intended_use: str = ""
    limitations: str = ""
    training_data: str = ""
    ethical_considerations: str = ""
    owners: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, record: VersionRecord) -> CardFields:
        """The card stored with ``record`` (an empty one when there is none)."""
        return cls.from_tags(record.tags)

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any]) -> CardFields:
        stored = tags.get(CARD_TAG)
        if not isinstance(stored, Mapping):
            return cls()
        texts = {name: stored[name] for name in TEXT_FIELDS if isinstance(stored.get(name), str)}
        owners = stored.get("owners")
        listed = tuple(o for o in owners if isinstance(o, str)) if isinstance(owners, list) else ()
        return cls(**texts, owners=listed)

    def to_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in TEXT_FIELDS}, "owners": list(self.owners)}

    def missing(self) -> list[str]:
        """The fields nobody has written yet, in card order."""
        return [name for name in EDITABLE if not getattr(self, name)]

    def updated(self, changes: Mapping[str, Any]) -> CardFields:
        """A copy with ``changes`` applied (None leaves a field as it is), checked: a 422
        pointing at the field for anything but text, or a list of owner names."""
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise InvalidInputError(
                f"unknown card field(s) {', '.join(unknown)}; editable: {', '.join(EDITABLE)}",
                pointer=f"/{unknown[0]}",
            )
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if value is None:
                continue
            values[name] = _owners(value) if name == "owners" else _text(name, value)
        return replace(self, **values)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"card field {name} must be text", pointer=f"/{name}")
    if len(value) > MAX_TEXT:
        raise InvalidInputError(
            f"card field {name} has {len(value):,} characters; at most {MAX_TEXT:,}",
            pointer=f"/{name}",
        )
    return value.strip()


def _owners(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError("owners must be a list of names", pointer="/owners")
    if len(value) > MAX_OWNERS:
        raise InvalidInputError(f"at most {MAX_OWNERS} owners", pointer="/owners")
    owners = []
    for index, owner in enumerate(value):
        if not isinstance(owner, str) or not owner.strip() or len(owner) > 200:
            raise InvalidInputError(
                "each owner must be a name or address of 1 to 200 characters",
                pointer=f"/owners/{index}",
            )
        owners.append(owner.strip())
    return tuple(dict.fromkeys(owners))  # a name given twice is one owner


def edit_card(
    registry: Registry,
    name: str,
    version: int,
    changes: Mapping[str, Any],
    *,
    description: str | None = None,
    actor: Actor | None = None,
) -> VersionRecord:
    """Apply ``changes`` (field -> value; None keeps the field) and optionally a new
    description to ``name/version``, as one audited change; returns the version as it is now."""
    if description is not None:
        description = _text("description", description)
    with registry.database.write() as s:
        row = version_row(s, name, version)
        tags = dict(row.tags)
        current = CardFields.from_tags(row.tags)
        card = current.updated(changes)
        before = {"description": row.description, "card": current.to_dict()}
        tags[CARD_TAG] = card.to_dict()
        row.tags = tags
        if description is not None:
            row.description = description
        after = {"description": row.description, "card": card.to_dict()}
        append(s, actor, "version.card", f"{name}/{version}", before, after)
    return registry.get_version(name, version)
