"""`pixelwise datasets list` and `pixelwise datasets export NAME OUT_DIR`: the built-in datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.app import datasets_app
from pixelwise.data.builtin import BUILTINS
from pixelwise.errors import PixelwiseError


def option_help(option: str) -> str:
    """What ``option`` means for each built-in that takes it, from the registry: "shapes: image side; ..."."""
    meanings = [f"{entry.name}: {entry.option_help[option]}" for entry in BUILTINS.values() if option in entry.defaults]
    return "; ".join(meanings) + "."


@datasets_app.command("list")
def list_datasets() -> None:
    """List the built-in datasets, one line each."""
    from pixelwise.data.builtin import list_builtin

    entries = list_builtin()
    width = max(len(name) for name in entries)
    for name, description in entries.items():
        typer.echo(f"{name.ljust(width)}  {description}")


@datasets_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Built-in dataset name (see `pixelwise datasets list`).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write: train/ val/ test/, classes.yaml, README.")],
    size: Annotated[int | None, typer.Option(help=option_help("size"))] = None,
    count: Annotated[int | None, typer.Option(help=option_help("count"))] = None,
    seed: Annotated[int | None, typer.Option(help=option_help("seed"))] = None,
    noise: Annotated[float | None, typer.Option(help=option_help("noise"))] = None,
    source: Annotated[Path | None, typer.Option(help=option_help("source"))] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT_DIR if it holds an earlier export.")] = False,
) -> None:
    """Export a built-in dataset as an ordinary dataset folder (deterministic for the same options)."""
    from pixelwise.data.builtin import METADATA_FILE, export_builtin
    from pixelwise.data.splits import SPLITS

    if out_dir.exists():
        if not out_dir.is_dir():
            raise PixelwiseError(f"{out_dir} is a file; give a folder to export into")
        if any(out_dir.iterdir()):
            earlier_export = (out_dir / METADATA_FILE).is_file()
            if not earlier_export:
                raise PixelwiseError(
                    f"{out_dir} is not empty and holds no earlier pixelwise export; pick another folder "
                    "(--force only replaces earlier exports, never other files)"
                )
            if not force:
                raise PixelwiseError(
                    f"{out_dir} holds an earlier export; pass --force to replace it or pick another folder"
                )
    options = {"size": size, "count": count, "seed": seed, "noise": noise, "source": source}
    # only the options given: each dataset refuses the ones it does not take
    given = {key: value for key, value in options.items() if value is not None}
    root = export_builtin(name, out_dir, **given)
    counts = ", ".join(f"{split} {len(list((root / split / 'images').iterdir()))}" for split in SPLITS)
    typer.echo(f"wrote {name} to {root} ({counts} images)")
