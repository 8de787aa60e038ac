"""`pixelwise datasets list` and `export NAME -o DIR`: the built-in datasets; `import FORMAT SOURCE -o DIR` and
`export-coco DATASET -o FILE`: labels from and to labelling tools (``pixelwise.data.importers``)."""

from __future__ import annotations

from pathlib import Path

import typer

from pixelwise.cli.app import Section, command_class, datasets_app
from pixelwise.cli.options import out_option, overwrite_option, quiet_option
from pixelwise.data.builtin import BUILTINS
from pixelwise.data.importers import IMPORTERS
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
    out: Path = out_option("Folder to write: train/ val/ test/, classes.yaml, README."),
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

    out_dir = out

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


# --- labels from labelling tools ----------------------------------------------------------------------------


def import_formats() -> list[Section]:
    """The help's list of formats, from the importers' registry."""
    return [("Formats", [(name, f"{entry.description}. SOURCE: {entry.source}") for name, entry in IMPORTERS.items()])]


@datasets_app.command(
    "import",
    cls=command_class(import_formats),
    epilog="""Examples:

\b
  pixelwise datasets import coco labels.json --images photos -o data/mine
  pixelwise datasets import cvat task_7.zip -o data/streets
  pixelwise datasets import labelme labels/ -o data/cells --uncovered ignore
  pixelwise datasets import voc VOCdevkit/VOC2012 -o data/voc
  pixelwise datasets import cityscapes ~/cityscapes -o data/city""",
)
def import_export(
    format: str = typer.Argument(..., metavar="FORMAT", help=f"The tool's format: {', '.join(IMPORTERS)}."),
    source: Path = typer.Argument(
        ..., metavar="SOURCE", help="The export: a file, a zip or a folder, as each format says below."
    ),
    out: Path = out_option("Dataset folder to write: images/, masks/, classes.yaml."),
    images: Path | None = typer.Option(
        None,
        "--images",
        metavar="DIR",
        help="The images, when the export holds none (COCO: the folder its file_names are in).  "
        "[default: the export's own, or the COCO file's folder]",
        show_default=False,
    ),
    uncovered: str | None = typer.Option(
        None,
        "--uncovered",
        metavar="background|ignore",
        help="Pixels no shape covers (coco, cvat XML, labelme): the background class, or the ignore label "
        "255 for sparse labels.  [default: background]",
        show_default=False,
    ),
    empty_images: str | None = typer.Option(
        None,
        "--empty-images",
        metavar="keep|refuse",
        help="An image without shapes: keep it (all uncovered, with a note) or refuse the import.  [default: keep]",
        show_default=False,
    ),
    overlap_rule: str | None = typer.Option(
        None,
        "--overlap-rule",
        metavar="later|smaller-on-top",
        help="coco: where annotations overlap, the later one in the file is on top, or the smaller one "
        "(larger ones painted first).  [default: later]",
        show_default=False,
    ),
    background: str | None = typer.Option(
        None,
        "--background",
        metavar="NAME",
        help="The label that means the background (class 0), when it is not named background.",
    ),
    overwrite: bool = overwrite_option("Replace an earlier import in --out (never other files)."),
    quiet: bool = quiet_option(),
) -> None:
    """Import labels from a labelling tool as a dataset folder.

    Everything is checked before the first file is written; the folder appears
    whole or not at all. COCO files, and CVAT's polygons and boxes, need the
    [coco] extra (pycocotools).
    """
    from pixelwise.data.importers import import_dataset

    report = import_dataset(
        format,
        source,
        out,
        overwrite=overwrite,
        quiet=quiet,
        images=images,
        uncovered=uncovered,
        empty_images=empty_images,
        overlap_rule=overlap_rule,
        background=background,
    )
    names = ", ".join(report.classes.names[:8]) + (", ..." if report.classes.num_classes > 8 else "")
    typer.echo(
        f"wrote {report.images} images of the {format} export to {report.path} "
        f"({report.classes.num_classes} classes: {names})"
    )


@datasets_app.command(
    "export-coco",
    epilog="""Examples:

\b
  pixelwise datasets export-coco data/cells -o cells.json
  pixelwise datasets export-coco data/city --split val -o val.json --overwrite""",
)
def export_coco_command(
    dataset: str = typer.Argument(..., metavar="DATASET", help="A dataset folder or a built-in dataset name."),
    out: Path = out_option("The COCO .json file to write.", metavar="FILE"),
    split: str = typer.Option(
        "all",
        metavar="train|val|test|all",
        help="Which images (a --split of a flat folder is the seeded 70/15/15 split).",
    ),
    overwrite: bool = overwrite_option("Replace the .json file if it exists."),
    quiet: bool = quiet_option(),
) -> None:
    """Write a dataset's masks as a COCO file for a labelling tool.

    For CVAT, Label Studio or any COCO reader. Class 0 is the background: listed, without annotations. Ignored pixels are
    left out (COCO has no ignore label). Needs the [coco] extra (pycocotools).
    """
    from pixelwise.data.importers import export_coco

    report = export_coco(dataset, out, split=split, overwrite=overwrite, quiet=quiet)
    typer.echo(
        f"wrote {report.images} images, {report.annotations} annotations and {report.categories} categories "
        f"to {report.path}"
    )
