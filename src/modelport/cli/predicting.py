"""`modelport predict`: one prediction from a file or stdin, locally or through a server.

The input is shaped by what the model takes, so the same CSV or JSON works for a tensor model
and a columns model, here and remotely. Locally the signature comes from the registry;
through a server it comes from the server's V2 metadata of the version it serves.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from modelport.cli import output
from modelport.cli.inputs import InputLayout, read_input
from modelport.cli.sessions import opened_registry

_INPUT_HELP = (
    ".csv, .json, .npy, or - for stdin (told apart by content). A CSV's first "
    "line is data, not a header, when it fits the model's input: numbers only for a "
    "tensor model; as many fields as its columns, naming none, for a columns model."
)


def predict(
    model: Annotated[str, typer.Argument(help="name, name/3 or name@alias")],
    input: Annotated[str, typer.Option("--input", "-i", help=_INPUT_HELP)],
    url: Annotated[
        str | None, typer.Option(help="Ask a running server (e.g. http://127.0.0.1:8000) instead.")
    ] = None,
    output_name: Annotated[
        str | None,
        typer.Option("--output", help="Output to print, e.g. probabilities (default: the first)."),
    ] = None,
) -> None:
    """Predict with a registered model, locally or through a server; prints JSON."""
    result = _remote(model, input, url, output_name) if url else _local(model, input, output_name)
    output.emit_json({"predictions": result.tolist()})


def _local(model: str, source: str, output_name: str | None) -> np.ndarray:
    from modelport.sdk import LoadedModel

    with opened_registry() as registry:
        record = registry.resolve(model)
        data = read_input(source, InputLayout.of(record.signature))
        chosen = record.signature.output_name(output_name)
        loaded = LoadedModel(record, registry.load(record))
        return loaded.predict_outputs(data)[chosen]


def _remote(model: str, source: str, url: str, output_name: str | None) -> np.ndarray:
    from modelport.client import Client

    hints = {"internal_error": f"check that a modelport server answers at {url}"}
    with output.reporting_errors(hints), Client(url) as client:
        layout = InputLayout.from_metadata(client.metadata(model))
        return client.predict(model, read_input(source, layout), output=output_name)
