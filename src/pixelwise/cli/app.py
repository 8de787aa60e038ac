"""The Typer application every subcommand module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="pixelwise",
    help="Image semantic segmentation: classical baselines, CNNs and adversarial training, compared.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Built-in datasets: list them, export one as a dataset folder.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
