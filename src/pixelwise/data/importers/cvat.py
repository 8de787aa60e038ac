"""CVAT: a "Segmentation mask 1.1" export (zip or folder) or a "CVAT for images 1.1" export (its
``annotations.xml``, alone or in its zip or folder).

- **Segmentation mask 1.1** is Pascal VOC's layout with CVAT's ``labelmap.txt`` (``name:r,g,b::`` a line):
  colour masks in ``SegmentationClass/``, images in ``JPEGImages/`` when exported with them. Read by
  ``voc.read_segmentation``: the labels and colours of the labelmap, in its order, background first.
- **CVAT for images 1.1**: the labels of ``<meta>`` (with their ``<color>``) and per ``<image>`` its shapes:
  ``<polygon points="x,y;x,y...">``, ``<box xtl ytl xbr ybr>`` and ``<mask rle left top width height>``
  (CVAT's own run lengths, row by row inside the box, starting with a run of 0s). Polygons and boxes are
  rasterised through pycocotools, as CVAT's own mask export (Datumaro) does (the ``[coco]`` extra); shapes
  are painted by ``z_order``, then in file order, a later one over an earlier one. Polylines, points,
  ellipses, cuboids, skeletons and tags paint nothing and are counted in a note. Images are found by name in
  ``images/`` beside the XML, or in ``--images``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from pixelwise.data.classes import Color
from pixelwise.data.importers import rle
from pixelwise.data.importers.archive import Tree
from pixelwise.data.importers.base import (
    ImageFile,
    ImportedDataset,
    ImportedImage,
    Importer,
    ImportOptions,
    Layer,
    Patch,
    check_empty,
    note_skipped,
    number,
    paint,
    shape_classes,
    unique_stems,
)
from pixelwise.data.importers.masks import find_image, folder_index, image_index
from pixelwise.data.importers.voc import read_segmentation
from pixelwise.errors import PixelwiseError

XML_NAME = "annotations.xml"
AREAS = ("polygon", "box", "mask")
NO_AREA = frozenset({"polyline", "points", "ellipse", "cuboid", "skeleton", "tag"})
SHAPE_OPTIONS = ("uncovered", "empty_images", "background")


@dataclass(frozen=True)
class Shape:
    """One shape of an image: its label, its z_order and the pixels it covers, drawn when called."""

    label: str
    z_order: int
    patch: Callable[[], Patch]


def read(source: Path, options: ImportOptions) -> ImportedDataset:
    if source.suffix.lower() == ".xml" and source.is_file():
        tree = Tree(source.parent)
        return _guarded(tree, lambda: read_xml(tree, source.name, "", options))
    tree = Tree(source)

    def dispatch() -> ImportedDataset:
        top = tree.top(XML_NAME)
        if top is not None:
            return read_xml(tree, top + XML_NAME, top, options)
        top = tree.top("SegmentationClass/")
        if top is None:
            raise PixelwiseError(
                f"{source}: not a CVAT export (no labelmap.txt with SegmentationClass/, no annotations.xml); "
                "export the task as 'Segmentation mask 1.1' or 'CVAT for images 1.1'"
            )
        given = [name for name in SHAPE_OPTIONS if getattr(options, name) != getattr(ImportOptions(), name)]
        if given:
            raise PixelwiseError(
                f"--{given[0].replace('_', '-')} is for shapes; a Segmentation mask export has a label on every pixel"
            )
        return read_segmentation(tree, top, options, format_name="cvat")

    return _guarded(tree, dispatch)


def _guarded(tree: Tree, reading: Callable[[], ImportedDataset]) -> ImportedDataset:
    try:
        return reading()
    except BaseException:
        tree.close()
        raise


def read_xml(tree: Tree, name: str, top: str, options: ImportOptions) -> ImportedDataset:
    where = tree.where(name)
    try:
        root = ElementTree.fromstring(tree.read(name))
    except ElementTree.ParseError as error:
        raise PixelwiseError(f"{where}: not valid XML ({error}); export the task again") from None
    if root.tag != "annotations":
        raise PixelwiseError(f"{where}: not a CVAT XML file (its root is <{root.tag}>, not <annotations>)")
    if root.find("track") is not None:
        raise PixelwiseError(f"{where}: a 'CVAT for video' export (tracks); export the task as 'CVAT for images 1.1'")
    labels = _labels(root, where)
    index = folder_index(options.images) if options.images is not None else image_index(tree, top + "images")
    kinds: Counter[str] = Counter()  # shapes by tag
    parsed = [_image(element, labels, index, where, kinds) for element in root.iterfind("image")]
    if not parsed:
        raise PixelwiseError(f"{where}: no <image> elements; export the task as 'CVAT for images 1.1'")
    if kinds["polygon"] or kinds["box"]:
        rle.mask_api("rasterising CVAT polygons and boxes")  # said before any work, not at the first image
    skipped = {f"<{kind}>": count for kind, count in kinds.items() if kind in NO_AREA}
    note_skipped(skipped, source=where, why="they have no area to paint")
    classes = shape_classes(list(labels), list(labels.values()), options, source=where)
    records = []
    for name_in_xml, image, size, shapes in parsed:
        ordered = sorted(shapes, key=lambda shape: shape.z_order)  # stable: equal z_orders keep the file order
        layers = [Layer(classes.values[shape.label], shape.patch) for shape in ordered]
        stem = PurePosixPath(name_in_xml).stem
        records.append(ImportedImage(stem, image, size, _painter(size, classes.fill, layers)))
    unique_stems([(record.stem, record.image.name) for record in records], source=where)
    check_empty([name_in_xml for name_in_xml, _, _, shapes in parsed if not shapes], options, source=where)
    return ImportedDataset("cvat", tree.path, classes.spec, tuple(records), close=tree.close)


def _labels(root: ElementTree.Element, where: str) -> dict[str, Color | None]:
    """The labels of ``<meta>`` (task, project or job) in order, with their colours."""
    labels: dict[str, Color | None] = {}
    for group in root.iterfind("meta//labels"):
        for label in group.findall("label"):
            name = (label.findtext("name") or "").strip()
            if name:
                labels.setdefault(name, _hex_color(label.findtext("color")))
    if not labels:
        raise PixelwiseError(f"{where}: no labels in <meta>; export the task as 'CVAT for images 1.1' with its meta")
    return labels


def _hex_color(text: str | None) -> Color | None:
    value = (text or "").strip()
    if len(value) == 7 and value.startswith("#"):
        try:
            return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
        except ValueError:
            return None
    return None


def _image(
    element: ElementTree.Element,
    labels: dict[str, Color | None],
    index: dict[str, ImageFile],
    where: str,
    kinds: Counter[str],
) -> tuple[str, ImageFile, tuple[int, int], list[Shape]]:
    name = element.get("name") or ""
    image = find_image(index, str(PurePosixPath(name).with_suffix("")))
    if image is None:
        raise PixelwiseError(
            f"{where}: image {name!r} is not in the export's images/; export with images, or give --images DIR"
        )
    size = image.size()
    declared = (element.get("height"), element.get("width"))
    if declared != (str(size[0]), str(size[1])):
        raise PixelwiseError(
            f"{where}: image {name} is {size[1]} × {size[0]} but the XML says {declared[1]} × {declared[0]} "
            "(width × height); export the annotations of these very images"
        )
    shapes: list[Shape] = []
    for position, shape in enumerate(element, start=1):
        here = f"{where}: image {name}, <{shape.tag}> {position}"
        if shape.tag in NO_AREA or shape.tag in AREAS:
            kinds[shape.tag] += 1
        if shape.tag not in AREAS:
            continue  # no area, or not a shape at all (CVAT has added elements over its versions)
        label = shape.get("label") or ""
        if label not in labels:
            raise PixelwiseError(f"{here}: label {label!r} is not among the labels of <meta>; fix the export")
        drawing = _drawing(shape, size, here)
        shapes.append(Shape(label, int(number(shape.get("z_order", "0"), "z_order", source=here)), drawing))
    return name, image, size, shapes


def _drawing(shape: ElementTree.Element, size: tuple[int, int], here: str) -> Callable[[], Patch]:
    if shape.tag == "polygon":
        pairs = [pair.split(",") for pair in (shape.get("points") or "").split(";") if pair.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise PixelwiseError(f"{here}: points {shape.get('points')!r} are not 'x,y;x,y;...'; fix the export")
        flat = [number(value, "a point", source=here) for pair in pairs for value in pair]
        polygon = rle.check_polygons([flat], where=here)
        return lambda: rle.polygon_patch(polygon, size)
    if shape.tag == "box":
        left, top, right, bottom = (number(shape.get(key), key, source=here) for key in ("xtl", "ytl", "xbr", "ybr"))
        corners = [[left, top, right, top, right, bottom, left, bottom]]
        return lambda: rle.polygon_patch(corners, size)
    return _mask(shape, size, here)


def _mask(shape: ElementTree.Element, size: tuple[int, int], here: str) -> Callable[[], Patch]:
    """CVAT's ``<mask rle="3, 6, 5" left top width height>``: runs of 0s and 1s, row by row, inside the box."""
    try:
        runs = [int(value) for value in (shape.get("rle") or "").split(",")]
        left, top, width, height = (int(shape.get(key) or "") for key in ("left", "top", "width", "height"))
    except ValueError:
        raise PixelwiseError(f"{here}: malformed mask: rle, left, top, width, height must be whole numbers") from None
    if min(runs) < 0 or sum(runs) != width * height:
        raise PixelwiseError(
            f"{here}: malformed mask RLE: its runs cover {sum(runs)} pixels, its {width} × {height} box has "
            f"{width * height}; fix the export"
        )
    if left < 0 or top < 0 or width < 1 or height < 1 or top + height > size[0] or left + width > size[1]:
        raise PixelwiseError(
            f"{here}: mask box ({left}, {top}, {width} × {height}) is not inside the image; fix the export"
        )

    def draw() -> Patch:
        return Patch(np.repeat(np.arange(len(runs)) % 2 == 1, runs).reshape(height, width), top, left)

    return draw


def _painter(size: tuple[int, int], fill: int, layers: list[Layer]) -> Callable[[], np.ndarray]:
    return lambda: paint(size, fill, layers)


IMPORTER = Importer(
    name="cvat",
    description="CVAT: Segmentation mask 1.1, or CVAT for images 1.1 XML (polygons, boxes, masks)",
    source="a zip, folder or .xml",
    options=("images", *SHAPE_OPTIONS),
    read=read,
)
