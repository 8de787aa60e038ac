"""Pascal VOC: ``SegmentationClass/*.png`` masks and ``JPEGImages/`` images, in a folder or a zip.

Without a ``labelmap.txt`` the masks are VOC's palette PNGs: the palette index is the class (0..20, the 21
VOC classes, in VOC's colours) and 255 the "void" border, which becomes the ignore label. With one (what
CVAT's "Segmentation mask 1.1" and Datumaro's VOC exports write: ``name:r,g,b:parts:actions`` a line) the
classes are its labels, in its order with ``background`` first, and each mask pixel's colour (a palette
image's palette colour, or RGB) names its label; VOC's void colour (224, 224, 192) is ignored when no label
has it.

Every mask in ``SegmentationClass/`` is imported (the ``ImageSets`` lists are not consulted: a dataset
folder is split by pixelwise); each finds its image by name in ``JPEGImages/`` or in ``--images``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from pixelwise.data.classes import ClassSpec, Color
from pixelwise.data.importers.archive import Tree
from pixelwise.data.importers.base import (
    IGNORE_INDEX,
    ImportedDataset,
    ImportedImage,
    Importer,
    ImportOptions,
    unique_stems,
)
from pixelwise.data.importers.masks import (
    by_colour,
    by_index,
    check_sizes,
    find_image,
    folder_index,
    image_index,
    mask_values,
)
from pixelwise.errors import PixelwiseError

VOC_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOID_COLOR: Color = (224, 224, 192)
LABELMAP = "labelmap.txt"
Decoder = Callable[[np.ndarray, "np.ndarray | None", str], np.ndarray]


def read(source: Path, options: ImportOptions) -> ImportedDataset:
    tree = Tree(source)
    try:
        top = tree.top("SegmentationClass/")
        if top is None:
            raise PixelwiseError(
                f"{source}: not a VOC-style export (no SegmentationClass/ folder of masks); give the folder or zip "
                "that holds SegmentationClass/ and JPEGImages/"
            )
        return read_segmentation(tree, top, options, format_name="voc")
    except BaseException:
        tree.close()
        raise


def read_segmentation(tree: Tree, top: str, options: ImportOptions, *, format_name: str) -> ImportedDataset:
    """The masks of ``top + SegmentationClass/`` with their images, classes from ``labelmap.txt`` or VOC's."""
    classes, decode = _classes(tree, top)
    index = folder_index(options.images) if options.images is not None else image_index(tree, top + "JPEGImages")
    folder = top + "SegmentationClass/"
    masks = [name for name in tree.under(folder) if PurePosixPath(name).suffix.lower() == ".png"]
    if not masks:
        raise PixelwiseError(f"{tree.where(folder)} holds no PNG masks; is this a segmentation export?")
    records: list[ImportedImage] = []
    for name in masks:
        key = str(PurePosixPath(name[len(folder) :]).with_suffix(""))
        image = find_image(index, key)
        if image is None:
            where = options.images if options.images is not None else tree.where(top + "JPEGImages")
            raise PixelwiseError(
                f"{tree.where(name)}: its image {key} is not in {where}; export the task with its images, or give "
                "their folder with --images DIR"
            )
        size = check_sizes(image, tree, name)
        records.append(ImportedImage(PurePosixPath(key).name, image, size, _labels(tree, name, decode)))
    unique_stems([(record.stem, record.image.name) for record in records], source=str(tree.path))
    return ImportedDataset(format_name, tree.path, classes, tuple(records), close=tree.close)


def _labels(tree: Tree, name: str, decode: Decoder) -> Callable[[], np.ndarray]:
    def labels() -> np.ndarray:
        pixels, palette = mask_values(tree, name)
        return decode(pixels, palette, tree.where(name))

    return labels


def _classes(tree: Tree, top: str) -> tuple[ClassSpec, Decoder]:
    if not tree.has(top + LABELMAP):
        spec = ClassSpec.default(len(VOC_NAMES), names=VOC_NAMES)
        return spec, lambda pixels, palette, where: by_index(pixels, spec.num_classes, where=where)
    where = tree.where(top + LABELMAP)
    entries = parse_labelmap(tree.text(top + LABELMAP), where=where)
    ordered = sorted(entries, key=lambda entry: entry[0].lower() != "background")  # background first, if named
    try:
        spec = ClassSpec(tuple(name for name, _ in ordered), tuple(color for _, color in ordered))
    except PixelwiseError as error:
        raise PixelwiseError(f"{where}: {error}") from None
    colours = {color: index for index, color in enumerate(spec.colors)}
    colours.setdefault(VOID_COLOR, IGNORE_INDEX)
    return spec, lambda pixels, palette, mask: by_colour(pixels, palette, colours, where=mask)


def parse_labelmap(text: str, *, where: str) -> list[tuple[str, Color]]:
    """``labelmap.txt``: ``name:r,g,b:parts:actions`` per line, ``#`` comments; each label needs a colour."""
    entries: list[tuple[str, Color]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour_text = rest.split(":", 1)[0]
        parts = [part.strip() for part in colour_text.split(",")]
        if not name or len(parts) != 3 or not all(part.isdigit() and int(part) <= 255 for part in parts):
            raise PixelwiseError(
                f"{where}, line {number}: {line!r} is not 'name:r,g,b::' with 0..255; the masks are read by colour"
            )
        entries.append((name, (int(parts[0]), int(parts[1]), int(parts[2]))))
    if not entries:
        raise PixelwiseError(f"{where}: no labels; a labelmap has a line 'name:r,g,b::' per label")
    return entries


IMPORTER = Importer(
    name="voc",
    description="Pascal VOC: SegmentationClass/ palette masks, 21 classes, 255 ignored",
    source="a folder or zip",
    options=("images",),
    read=read,
)
