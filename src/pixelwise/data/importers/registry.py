"""The formats by name, and the one call that turns an export into a dataset folder.

A new format is one module beside this one (its ``read(source, options) -> ImportedDataset`` and an
``IMPORTER = Importer(...)``) and its line in ``IMPORTERS``. ``import_dataset`` is what a dataset-source
registry calls to read a format directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pixelwise.data.importers import cityscapes, coco, cvat, labelme, voc
from pixelwise.data.importers.base import Importer, ImportOptions, option_flag
from pixelwise.data.importers.writer import ImportReport, check_output, write_dataset
from pixelwise.errors import PixelwiseError, did_you_mean

IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (coco.IMPORTER, cvat.IMPORTER, labelme.IMPORTER, voc.IMPORTER, cityscapes.IMPORTER)
}


def import_dataset(
    format: str,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    quiet: bool = True,
    **options: Any,
) -> ImportReport:
    """Write the export ``source`` of ``format`` (a name of ``IMPORTERS``) as the dataset folder ``out``.

    ``options`` are ``ImportOptions`` fields the format honours (``None`` means the default): ``images``,
    ``uncovered``, ``empty_images``, ``overlap_rule``, ``background``. Everything is read and checked before
    the first file is written; ``out`` appears whole or not at all, and replaces an earlier import only with
    ``overwrite``.
    """
    importer = importer_for(format)
    given = {key: value for key, value in options.items() if value is not None}
    chosen = resolve_options(importer, given)
    source_path, out_path = Path(source), Path(out)
    inputs = [source_path] + ([chosen.images] if chosen.images is not None else [])
    check_output(out_path, inputs, overwrite=overwrite)
    dataset = importer.read(source_path, chosen)
    return write_dataset(dataset, out_path, options=given, quiet=quiet)


def importer_for(format: str) -> Importer:
    if format not in IMPORTERS:
        raise PixelwiseError(
            f"no import format {format!r}{did_you_mean(format, IMPORTERS)}; choose one of {', '.join(IMPORTERS)}"
        )
    return IMPORTERS[format]


def resolve_options(importer: Importer, given: dict[str, Any]) -> ImportOptions:
    """``ImportOptions`` from the options given; one the format does not honour (or no option at all) is an
    error naming the ones it has."""
    for key in given:
        if key not in ImportOptions.names():
            raise PixelwiseError(
                f"no import option {key!r}{did_you_mean(key, ImportOptions.names())}; the options: "
                f"{', '.join(ImportOptions.names())}"
            )
        if key not in importer.options:
            taken = ", ".join(option_flag(name) for name in importer.options)
            raise PixelwiseError(f"{option_flag(key)} does not apply to {importer.name} exports; they take {taken}")
    if "images" in given:
        given = {**given, "images": Path(given["images"])}
    return ImportOptions(**given)
