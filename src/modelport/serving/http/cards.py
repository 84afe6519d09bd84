"""Model cards over HTTP: ``GET`` renders a version's card (Markdown by default, HTML for
``?format=html`` or a browser's ``Accept: text/html``, the editable fields for
``?format=json``) with a read key; ``PUT`` edits the fields with a deploy key, audited as
``version.card`` like every other registry change."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from modelport.registry import Registry, VersionRecord
from modelport.registry.cards import CardFields, card_of, edit_card, html, markdown
from modelport.security.keys import Scope
from modelport.serving.http.access import actor_of, changes, requires
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["registry"])
reader = APIRouter(dependencies=[requires(Scope.READ)])
deployer = APIRouter(dependencies=changes(Scope.DEPLOY))

CARD = "/models/{name}/versions/{version}/card"
MARKDOWN = "text/markdown; charset=utf-8"


class CardBody(BaseModel):
    """Fields to change; a field left out (or null) keeps its text."""

    description: str | None = Field(None, description="The version's description.")
    intended_use: str | None = Field(None, description="What the model is for, and for whom.")
    limitations: str | None = Field(None, description="Where it is known to do badly.")
    training_data: str | None = Field(None, description="Which data it learnt from.")
    ethical_considerations: str | None = Field(None, description="Risks, fairness, privacy.")
    owners: list[str] | None = Field(None, description="Who answers for it (names or emails).")


_CARD_TYPES = {
    "text/markdown": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}


@reader.get(
    CARD,
    response_model=None,
    responses={200: {"description": "The card", "content": _CARD_TYPES}},
)
async def get_card(
    request: Request,
    name: str,
    version: int,
    format: Annotated[
        Literal["markdown", "html", "json"] | None,
        Query(description="markdown (default), html, or json (the editable fields)."),
    ] = None,
) -> Response | dict[str, Any]:
    """The version's model card."""
    registry = serving_state(request).registry
    record = await run_in_threadpool(registry.get_version, name, version)
    chosen = format or ("html" if _wants_html(request) else "markdown")
    if chosen == "json":
        return _fields(record)
    document = await run_in_threadpool(card_of, registry, record)
    if chosen == "html":
        return HTMLResponse(html(document))
    return Response(markdown(document), media_type=MARKDOWN)


@deployer.put(CARD)
async def put_card(request: Request, name: str, version: int, body: CardBody) -> dict[str, Any]:
    """Change the card's fields; answers with all of them."""
    registry: Registry = serving_state(request).registry
    changed = body.model_dump(exclude={"description"}, exclude_none=True)
    record = await run_in_threadpool(
        lambda: edit_card(
            registry,
            name,
            version,
            changed,
            description=body.description,
            actor=actor_of(request),
        )
    )
    return _fields(record)


def _fields(record: VersionRecord) -> dict[str, Any]:
    fields = CardFields.of(record)
    return {
        "model": record.name,
        "version": record.version,
        "description": record.description,
        **fields.to_dict(),
        "missing": fields.missing() + ([] if record.description.strip() else ["description"]),
    }


def _wants_html(request: Request) -> bool:
    """A browser asks for HTML first; curl's ``*/*`` and Markdown viewers get Markdown."""
    accept = request.headers.get("accept", "")
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first in ("text/html", "application/xhtml+xml")


# last: including copies the routes defined so far
router.include_router(reader)
router.include_router(deployer)
