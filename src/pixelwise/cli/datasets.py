"""`pixelwise datasets list` and `pixelwise datasets export NAME --out DIR`: the built-in datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from pixelwise.cli.app import datasets_app
from pixelwise.cli.options import out_option, out_or_old, overwrite_option, required_out
from pixelwise.data.builtin import BUILTINS
from pixelwise.errors import PixelwiseError


def option_help(option: str) -> str:
    """What ``option`` means for each built-in that takes it, and its default there, from the registry:
    "shapes: image side, default 64; ..."."""
    meanings = [
        f"{entry.name}: {entry.option_help[option]}"
        + ("" if entry.defaults[option] is None else f", default {entry.defaults[option]}")
        for entry in BUILTINS.values()
        if option in entry.defaults
    ]
    return "; ".join(meanings) + "."


@datasets_app.command("list", epilog="Example: pixelwise datasets list")
def list_datasets() -> None:
    """List the built-in datasets, one line each."""
    from pixelwise.data.builtin import list_builtin

    entries = list_builtin()
    width = max(len(name) for name in entries)
    for name, description in entries.items():
        typer.echo(f"{name.ljust(width)}  {description}")


@datasets_app.command(
    "export",
    epilog="""Examples:

\b
  pixelwise datasets export shapes -o data/shapes --count 500 --size 64
  pixelwise datasets export fashion -o data/fashion --source ~/fashion-mnist""",
)
def export(
    name: str = typer.Argument(..., metavar="NAME", help="Built-in dataset name (`pixelwise datasets list`)."),
    old_out: Path | None = typer.Argument(None, metavar="OUT_DIR", hidden=True),  # before --out; still accepted
    out: Path | None = out_option("Folder to write (required): train/ val/ test/, classes.yaml, README.", default=None),
    size: int | None = typer.Option(None, metavar="N", help=option_help("size")),
    count: int | None = typer.Option(None, metavar="N", help=option_help("count")),
    seed: int | None = typer.Option(None, metavar="N", help=option_help("seed")),
    noise: float | None = typer.Option(None, metavar="F", help=option_help("noise")),
    source: Path | None = typer.Option(None, metavar="DIR", help=option_help("source")),
    overwrite: bool = overwrite_option("Replace an earlier export in --out (never other files)."),
) -> None:
    """Export a built-in dataset as a dataset folder.

    The same options give the same files.
    """
    from pixelwise.data.builtin import METADATA_FILE, export_builtin
    from pixelwise.data.splits import SPLITS

    out_dir = required_out(out_or_old(out, old_out, old_name="the OUT_DIR argument"))

    if out_dir.exists():
        if not out_dir.is_dir():
            raise PixelwiseError(f"{out_dir} is a file; give a folder to export into")
        if any(out_dir.iterdir()):
            earlier_export = (out_dir / METADATA_FILE).is_file()
            if not earlier_export:
                raise PixelwiseError(
                    f"{out_dir} is not empty and holds no earlier pixelwise export; pick another folder "
                    "(--overwrite only replaces earlier exports, never other files)"
                )
            if not overwrite:
                raise PixelwiseError(
                    f"{out_dir} holds an earlier export; pass --overwrite to replace it or pick another folder"
                )
    options = {"size": size, "count": count, "seed": seed, "noise": noise, "source": source}
    # only the options given: each dataset refuses the ones it does not take
    given = {key: value for key, value in options.items() if value is not None}
    root = export_builtin(name, out_dir, **given)
    counts = ", ".join(f"{split} {len(list((root / split / 'images').iterdir()))}" for split in SPLITS)
    typer.echo(f"wrote {name} to {root} ({counts} images)")
