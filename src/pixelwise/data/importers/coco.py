"""COCO: one JSON file (``images``, ``annotations``, ``categories``) and a folder of images.

- Images are found by ``file_name``, relative to ``--images`` (default: the JSON's folder, or ``../images``
  beside an ``annotations/`` folder, the layout CVAT and Datumaro export).
- Categories may have any ids (not only 1..K); they become classes in the order of their ids, after the
  background (see ``base``). A category's ``color`` ([r, g, b], as COCO panoptic files have) is kept.
- ``segmentation``: polygons ``[[x1, y1, ...], ...]`` or an RLE ``{"size": [h, w], "counts": ...}``,
  compressed (a string) or not (a list, as ``iscrowd`` regions usually are). A crowd region is painted
  with its category like any other. An annotation without a segmentation (boxes only) paints nothing and
  is counted in a note.
- Overlaps: ``--overlap-rule later`` (default) paints the annotations in file order, a later one over an
  earlier one, which is what CVAT and LabelMe draw; ``smaller-on-top`` paints the larger ones first, so
  that an object drawn inside a larger one stays visible whichever the file lists first.

Everything is checked before the first image is written: the JSON's structure, each category id, each
image reference and file (its size against ``width`` / ``height``), each polygon's point count and each
RLE's run lengths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard

import numpy as np

from pixelwise.data.classes import Color
from pixelwise.data.importers import rle
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
    paint,
    shape_classes,
    unique_stems,
)
from pixelwise.errors import PixelwiseError


def read(source: Path, options: ImportOptions) -> ImportedDataset:
    rle.mask_api("importing COCO")  # every COCO mask goes through pycocotools: say so before any work
    document = load_json(source)
    categories = _categories(document, source)
    images = _images(document, source)
    by_image = _annotations(document, images, categories, source)
    names = [categories[category_id][0] for category_id in sorted(categories)]
    colors = [categories[category_id][1] for category_id in sorted(categories)]
    classes = shape_classes(names, colors, options, source=str(source))
    folder = _images_folder(source, options.images, [name for name, _ in images.values()])
    records: list[ImportedImage] = []
    for image_id, (file_name, size) in images.items():
        image = _image_file(folder, file_name, size, source)
        layers = [
            Layer(classes.values[categories[category_id][0]], _drawing(geometry, size))
            for category_id, geometry in by_image[image_id]
        ]
        labels = _painter(size, classes.fill, layers, options.overlap_rule)
        records.append(ImportedImage(PurePosixPath(file_name).stem, image, size, labels))
    unique_stems([(record.stem, record.image.name) for record in records], source=str(source))
    check_empty(
        [images[key][0] for key, annotations in by_image.items() if not annotations], options, source=str(source)
    )
    return ImportedDataset("coco", source, classes.spec, tuple(records))


def _annotations(
    document: dict[str, Any],
    images: dict[int, tuple[str, tuple[int, int]]],
    categories: dict[int, tuple[str, Color | None]],
    source: Path,
) -> dict[int, list[tuple[int, Any]]]:
    """Image id -> [(category id, checked polygons or RLE)], in file order."""
    by_image: dict[int, list[tuple[int, Any]]] = {image_id: [] for image_id in images}
    boxes_only = 0
    for position, annotation in enumerate(_list(document, "annotations", source)):
        if not isinstance(annotation, dict):
            raise PixelwiseError(f"{source}: annotation #{position + 1} is not an object; fix the export")
        where = f"{source}: annotation {annotation.get('id', f'#{position + 1}')}"
        image_id, category_id = annotation.get("image_id"), annotation.get("category_id")
        if image_id not in images:
            raise PixelwiseError(
                f"{where} points at image id {image_id!r}, which the file's images do not list; fix the export"
            )
        if category_id not in categories:
            raise PixelwiseError(
                f"{where} has category id {category_id!r}, which the file's categories do not define; fix the export"
            )
        segmentation = annotation.get("segmentation")
        if segmentation in (None, [], {}):
            boxes_only += 1
            continue
        if isinstance(segmentation, dict):
            geometry: Any = rle.check_rle(segmentation, images[image_id][1], where=where)
        else:
            geometry = rle.check_polygons(segmentation, where=where)
        by_image[image_id].append((category_id, geometry))
    skipped = {"annotations without a segmentation": boxes_only} if boxes_only else {}
    note_skipped(skipped, source=str(source), why="they have no area to paint")
    return by_image


def load_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or one line saying where it is broken."""
    if path.is_dir():
        raise PixelwiseError(f"{path} is a folder; give the COCO JSON file (e.g. annotations/instances_default.json)")
    if not path.is_file():
        raise PixelwiseError(f"{path}: no such file; give the COCO JSON file")
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise PixelwiseError(f"{path}: not a text file; give the COCO JSON file") from None
    except json.JSONDecodeError as error:
        raise PixelwiseError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    if not isinstance(document, dict):
        raise PixelwiseError(f"{path}: a COCO file is a JSON object with images, annotations and categories")
    return document


def _list(document: dict[str, Any], key: str, source: Path) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise PixelwiseError(
            f"{source}: no {key!r} list; a COCO file has images, annotations and categories (is it a COCO export?)"
        )
    return value


def _categories(document: dict[str, Any], source: Path) -> dict[int, tuple[str, Color | None]]:
    """Category id -> (name, colour or None); ids and names unique."""
    categories: dict[int, tuple[str, Color | None]] = {}
    for entry in _list(document, "categories", source):
        if not (isinstance(entry, dict) and _is_id(entry.get("id")) and isinstance(entry.get("name"), str)):
            raise PixelwiseError(f"{source}: category {entry!r} needs a whole-number id and a name; fix the export")
        if entry["id"] in categories:
            raise PixelwiseError(f"{source}: category id {entry['id']} is defined twice; give each category its own id")
        if any(name == entry["name"] for name, _ in categories.values()):
            raise PixelwiseError(f"{source}: two categories are named {entry['name']!r}; give each its own name")
        categories[entry["id"]] = (entry["name"], _color(entry.get("color")))
    if not categories:
        raise PixelwiseError(
            f"{source}: the file defines no categories; a COCO export lists its labels in 'categories'"
        )
    return categories


def _color(value: Any) -> Color | None:
    if isinstance(value, list) and len(value) == 3 and all(_is_id(part) and 0 <= part <= 255 for part in value):
        return (value[0], value[1], value[2])
    return None


def _images(document: dict[str, Any], source: Path) -> dict[int, tuple[str, tuple[int, int]]]:
    """Image id -> (file_name, (height, width))."""
    images: dict[int, tuple[str, tuple[int, int]]] = {}
    for entry in _list(document, "images", source):
        if not (isinstance(entry, dict) and _is_id(entry.get("id")) and isinstance(entry.get("file_name"), str)):
            raise PixelwiseError(f"{source}: image {entry!r} needs a whole-number id and a file_name; fix the export")
        height, width = entry.get("height"), entry.get("width")
        if not (_is_id(height) and _is_id(width) and height > 0 and width > 0):
            raise PixelwiseError(
                f"{source}: image {entry['file_name']} has no positive whole height and width; fix the export"
            )
        if entry["id"] in images:
            raise PixelwiseError(f"{source}: image id {entry['id']} is listed twice; give each image its own id")
        images[entry["id"]] = (entry["file_name"], (height, width))
    if not images:
        raise PixelwiseError(f"{source}: the file lists no images; export the annotations with their images listed")
    return images


def _images_folder(source: Path, given: Path | None, file_names: list[str]) -> Path:
    """``--images``, else the JSON's folder, else ``../images`` when the JSON is in ``annotations/``."""
    if given is not None:
        if not given.is_dir():
            raise PixelwiseError(f"--images {given}: no such folder; give the folder the file_names are relative to")
        return given
    beside = source.parent
    sibling = source.parent.parent / "images"
    first = file_names[0]
    if not (beside / first).is_file() and source.parent.name == "annotations" and (sibling / first).is_file():
        return sibling
    return beside


def _image_file(folder: Path, file_name: str, size: tuple[int, int], source: Path) -> ImageFile:
    path = folder / file_name
    if not path.is_file():
        raise PixelwiseError(
            f"{source}: image {file_name} is not in {folder}; give the images' folder with --images DIR"
        )
    image = ImageFile(str(path), path.suffix, path=path)
    found = image.size()
    if found != size:
        raise PixelwiseError(
            f"{source}: image {file_name} is {found[1]} × {found[0]} but the file says {size[1]} × {size[0]} "
            "(width × height); export the annotations of these very images"
        )
    return image


def _drawing(geometry: Any, size: tuple[int, int]) -> Callable[[], Patch]:
    if isinstance(geometry, dict):
        return lambda: rle.rle_patch(geometry, size)
    return lambda: rle.polygon_patch(geometry, size)


def _painter(size: tuple[int, int], fill: int, layers: list[Layer], rule: str) -> Callable[[], np.ndarray]:
    return lambda: paint(size, fill, layers, overlap_rule=rule)


def _is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


IMPORTER = Importer(
    name="coco",
    description="COCO JSON: polygons and RLE masks (needs pixelwise[coco])",
    source="annotations.json",
    options=("images", "uncovered", "empty_images", "overlap_rule", "background"),
    read=read,
)
