"""Model cards: what people write about a version (stored with it), and the card rendered
from that and the registry's own facts, as Markdown, HTML or JSON. The CLI (`modelport
card`) and the HTTP API (``/api/models/{name}/versions/{v}/card``) both go through here."""

from modelport.registry.cards.document import CardDocument, History, card_document, card_of
from modelport.registry.cards.fields import CARD_TAG, EDITABLE, CardFields, edit_card
from modelport.registry.cards.render import html, markdown

__all__ = [
    "CARD_TAG",
    "EDITABLE",
    "CardDocument",
    "CardFields",
    "History",
    "card_document",
    "card_of",
    "edit_card",
    "html",
    "markdown",
]
