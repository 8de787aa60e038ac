"""The Typer application every subcommand module registers on."""

from __future__ import annotations

from typing import Any

import typer

from pixelwise.errors import PixelwiseError

app = typer.Typer(
    name="pixelwise",
    help="Image semantic segmentation: classical baselines, CNNs and adversarial training, compared.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Built-in datasets: list them, export one as a dataset folder.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


def parse_key_values(pairs: list[str], flag: str) -> dict[str, Any]:
    """``["classes=4", "seeds=[[3, 4]]", "tolerance=none"]`` -> ``{"classes": 4, "seeds": [[3, 4]], "tolerance": None}``.

    Values are read as YAML scalars and lists (numbers, true/false, none/null, [..]); anything else stays a
    string. Dashes in keys become underscores, so ``marker-spacing=5`` and ``marker_spacing=5`` agree.

    >>> parse_key_values(["classes=4", "method=mean", "marker-spacing=0.5", "seeds=[[1, 2]]"], "--set")
    {'classes': 4, 'method': 'mean', 'marker_spacing': 0.5, 'seeds': [[1, 2]]}
    """
    import yaml

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not separator or not key:
            raise PixelwiseError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} classes=4")
        text = text.strip()
        if text.lower() == "none" or not text:
            parsed[key] = None
            continue
        try:
            parsed[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed[key] = text
    return parsed
