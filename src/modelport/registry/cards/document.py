"""A model card as a document: sections of paragraphs, lists and tables, gathered from what
the registry knows about one version (its record, stage and alias history) and what people
wrote on it (:mod:`~modelport.registry.cards.fields`).

The document holds plain text only; :mod:`~modelport.registry.cards.render` turns it into
Markdown or HTML and escapes every value on the way, so nothing a registrant typed (a
description, a tag, a metric's name) reaches a page as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelport.registry.cards.fields import CARD_TAG, CardFields
from modelport.registry.records import AliasEvent, StageTransition, VersionRecord
from modelport.registry.registry import Registry
from modelport.runtimes.signature import TensorSpec

NOT_WRITTEN = "Not written yet."


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Items:
    """A bulleted list."""

    items: tuple[str, ...]


Block = str | Table | Items
"""A paragraph (plain text, may hold line breaks), a table or a list."""


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class CardDocument:
    title: str
    sections: tuple[Section, ...]


@dataclass(frozen=True, slots=True)
class History:
    """What happened to one version: its stage moves, and the alias moves that involved it."""

    stages: Sequence[StageTransition]
    aliases: Sequence[AliasEvent]

    @classmethod
    def of(cls, registry: Registry, record: VersionRecord) -> History:
        moves = registry.alias_history(record.name)
        mine = [e for e in moves if record.version in (e.from_version, e.to_version)]
        return cls(registry.stage_history(record.name, record.version), mine)


def card_of(registry: Registry, record: VersionRecord) -> CardDocument:
    """The card of ``record``, with its history read from ``registry``."""
    return card_document(record, History.of(registry, record))


def card_document(record: VersionRecord, history: History) -> CardDocument:
    """The card of ``record``: people's fields first and last, the registry's facts between."""
    fields = CardFields.of(record)
    sections = (
        Section("Model details", (_text(record.description), _details(record, fields))),
        Section("Intended use", (_text(fields.intended_use),)),
        Section("Training data", (_text(fields.training_data),)),
        Section("Signature", _signature(record)),
        Section("Metrics", (_mapping(record.metrics, "metric"),)),
        Section("Parameters", (_mapping(record.params, "parameter"),)),
        Section("Framework and libraries", (_libraries(record),)),
        Section("Lineage", (_mapping(record.lineage, "key"),)),
        Section("Artifacts", _artifacts(record)),
        Section("Aliases and stages", _history(record, history)),
        Section("Limitations", (_text(fields.limitations),)),
        Section("Ethical considerations", (_text(fields.ethical_considerations),)),
    )
    return CardDocument(f"Model card: {record.address}", sections)


def _text(value: str) -> str:
    return value if value.strip() else NOT_WRITTEN


def _details(record: VersionRecord, fields: CardFields) -> Table:
    tags = {k: v for k, v in record.tags.items() if k != CARD_TAG}
    rows = [
        ("Model", record.name),
        ("Version", str(record.version)),
        ("Owners", ", ".join(fields.owners) or NOT_WRITTEN),
        ("Stage", record.stage.value),
        ("Registered", record.created_at.isoformat(timespec="seconds")),
        ("Flavor", record.flavor),
        ("Trusted (pickle loading allowed)", "yes" if record.trusted else "no"),
        *((f"Tag {k}", _plain(v)) for k, v in sorted(tags.items())),
    ]
    return Table(("", ""), tuple(rows))


def _signature(record: VersionRecord) -> tuple[Block, ...]:
    signature = record.signature
    columns = ("name", "dtype", "shape", "nullable")
    return (
        f"Signature kind: {signature.kind.value}.",
        Table(columns, tuple(_spec(s) for s in signature.inputs), "Inputs"),
        Table(columns, tuple(_spec(s) for s in signature.outputs), "Outputs"),
    )


def _spec(spec: TensorSpec) -> tuple[str, ...]:
    shape = "[" + ", ".join("N" if d == -1 else str(d) for d in spec.shape) + "]"
    return (spec.name, spec.dtype, shape, "yes" if spec.nullable else "no")


def _mapping(values: Mapping[str, Any], what: str) -> Block:
    if not values:
        return "None recorded."
    return Table((what, "value"), tuple((k, _plain(v)) for k, v in sorted(values.items())))


def _libraries(record: VersionRecord) -> Table:
    rows = [("framework", record.framework)]
    rows += sorted(record.library_versions.items())
    return Table(("package", "version"), tuple(rows))


def _artifacts(record: VersionRecord) -> tuple[Block, ...]:
    files = tuple(sorted(record.files.items()))
    return (
        f"Stored at {record.artifact_uri}; every file is checked against its SHA-256 on load.",
        Table(("file", "SHA-256"), files),
    )


def _history(record: VersionRecord, history: History) -> tuple[Block, ...]:
    current = (
        Items(tuple(f"{record.name}@{a}" for a in record.aliases))
        if record.aliases
        else "No alias points at this version."
    )
    aliases = Table(
        ("at", "alias", "from", "to"),
        tuple(
            (_at(e.at), e.alias, _number(e.from_version), _number(e.to_version))
            for e in history.aliases
        ),
        "Alias moves",
    )
    stages = Table(
        ("at", "from", "to"),
        tuple((_at(t.at), t.from_stage.value, t.to_stage.value) for t in history.stages),
        "Stage transitions",
    )
    return (current, aliases, stages)


def _at(moment: Any) -> str:
    return str(moment.isoformat(timespec="seconds"))


def _number(version: int | None) -> str:
    return "-" if version is None else str(version)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
