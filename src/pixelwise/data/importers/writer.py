"""Writing an import: an ordinary dataset folder, whole or not at all.

``images/`` (the export's files, copied as they are), ``masks/`` (palette PNGs through ``data.io.write_mask``),
``classes.yaml`` and ``pixelwise-import.json`` (format, source, options: what made the folder) are written
into a temporary folder beside ``out`` that becomes ``out`` only when every image succeeded
(``files.atomic_dir``): an import that fails or is interrupted leaves nothing, and an earlier import in
its place untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelwise.data.classes import ClassSpec
from pixelwise.data.importers.base import ImportedDataset
from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_dir, folder_entries

METADATA_FILE = "pixelwise-import.json"
CLASSES_FILE = "classes.yaml"


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: the folder, its format, how many images and which classes."""

    path: Path
    format: str
    images: int
    classes: ClassSpec


def check_output(out: Path, inputs: list[Path], *, overwrite: bool) -> None:
    """Before any work: ``out`` is not an input folder, nor inside one (an import never writes into its source),
    nor around an input (replacing ``out`` would remove it), and holds nothing unless ``overwrite`` and it is
    an earlier import (never other files)."""
    target = out.resolve()
    for given in inputs:
        place = given.resolve()
        inside = given.is_dir() and place in target.parents
        if target == place or inside or target in place.parents:
            where = "into" if inside else "over"
            raise PixelwiseError(
                f"-o {out}: the dataset would be written {where} {given}, which the import reads; inputs are never "
                "written: choose another folder"
            )
    if out.exists() and not out.is_dir():
        raise PixelwiseError(f"-o {out} is a file; give a folder to write the dataset into")
    if not folder_entries(out):
        return
    if not (out / METADATA_FILE).is_file():
        raise PixelwiseError(
            f"-o {out} is not empty and holds no earlier import; choose another folder (--overwrite replaces only an "
            "earlier import, never other files)"
        )
    if not overwrite:
        raise PixelwiseError(
            f"-o {out} holds an earlier import; pass --overwrite to replace it or choose another folder"
        )


def write_dataset(dataset: ImportedDataset, out: Path, *, options: dict[str, Any], quiet: bool = True) -> ImportReport:
    """Rasterise and write every image of ``dataset`` into the dataset folder ``out`` (atomically)."""
    from pixelwise.data.io import write_mask
    from pixelwise.progress import progress_bar

    try:
        with atomic_dir(out) as staging:
            (staging / "images").mkdir()
            (staging / "masks").mkdir()
            with progress_bar(total=len(dataset.images), desc="import", unit="image", quiet=quiet) as bar:
                for record in dataset.images:
                    labels = record.labels()
                    if labels.shape != record.size:
                        raise AssertionError(f"{record.image.name}: labels {labels.shape}, image {record.size}")
                    record.image.copy_to(staging / "images" / f"{record.stem}{record.image.suffix}")
                    write_mask(staging / "masks" / f"{record.stem}.png", labels, dataset.classes)
                    bar.update(1)
            dataset.classes.save(staging / CLASSES_FILE)
            metadata = {
                "format": dataset.format,
                "source": str(dataset.source),
                "options": {key: str(value) for key, value in options.items()},
                "images": len(dataset.images),
            }
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    finally:
        dataset.close()
    return ImportReport(out, dataset.format, len(dataset.images), dataset.classes)
