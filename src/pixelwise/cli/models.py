"""`pixelwise models`: the network architectures `--model` takes, each with its options, and the encoders."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

import typer

from pixelwise.cli.app import app


@app.command(
    epilog="""Examples:

\\b
  pixelwise models
  pixelwise models --encoders
  pixelwise train nuclei -o runs/fpn --model fpn --model-option encoder_depth=4"""
)
def models(
    encoders: bool = typer.Option(False, "--encoders", help="List every encoder name instead."),
) -> None:
    """List the network architectures, their options and encoders.

    Choose one with --model NAME (train, compare); set its options with --model-option KEY=VALUE; pick the
    encoder of an encoder-based model with --encoder NAME.
    """
    from pixelwise.models.registry import DEFAULT_ENCODER, MODELS, list_encoders, list_models, model_options
    from pixelwise.train.config import TrainConfig

    width = min(shutil.get_terminal_size((100, 24)).columns, 120) - 1
    if encoders:
        names = list_encoders()
        typer.echo(f"{len(names)} encoders (--encoder NAME; default {DEFAULT_ENCODER}); any timm model as tu-NAME:")
        typer.echo(textwrap.fill(", ".join(names), width, break_on_hyphens=False))
        return
    default_model = TrainConfig().model
    names = list_models()
    column = max(len(name) for name in names) + 2
    for name in names:
        architecture = MODELS[name]
        marks = [
            mark
            for mark, applies in (("default", name == default_model), ("no encoder", not architecture.uses_encoder))
            if applies
        ]
        description = architecture.description + (f" [{', '.join(marks)}]" if marks else "")
        options = ", ".join(f"{key}={_shown(value)}" for key, value in model_options(name).items()) or "none"
        indent = " " * column
        typer.echo(textwrap.fill(description, width, initial_indent=name.ljust(column), subsequent_indent=indent))
        wrapped = textwrap.fill(
            f"options: {options}", width, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
        )
        typer.echo(wrapped)
    note = (
        f"Encoder-based models take --encoder NAME (default {DEFAULT_ENCODER}, whose ImageNet weights load "
        f"offline with --encoder-weights imagenet); `pixelwise models --encoders` lists all {len(list_encoders())}."
    )
    typer.echo("\n" + textwrap.fill(note, width, break_on_hyphens=False))


def _shown(value: Any) -> str:
    """A default as one would type it after --model-option KEY=: none, true, [256, 128]."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return str(value)
