"""LabelMe: a folder of JSON files, one per image (``shapes``, ``imagePath``, optional ``imageData``).

Shapes are drawn as LabelMe's own ``labelme_export_json`` draws them (``labelme.utils.shape_to_mask``, with
Pillow): a ``polygon`` filled with its outline, a ``rectangle`` between its two corners, a ``circle`` of the
radius from its centre to its second point, a ``mask`` (LabelMe 5.5's AI masks: a PNG in base64 placed at
its box); ``line``, ``linestrip`` and ``point`` have no area and are skipped with a note. Later shapes
paint over earlier ones, as LabelMe draws them.

Classes are the labels found, sorted by name (LabelMe has no class list) after the background
(``_background_`` is LabelMe's name for it); ``__ignore__`` paints the ignore label. The image is the
embedded ``imageData`` when the file has it (what LabelMe itself shows), else the file at ``imagePath``
(relative to the JSON), or the file of that name in ``--images``. The dataset names each image after its
JSON file.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

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
from pixelwise.errors import PixelwiseError

NO_AREA = frozenset({"line", "linestrip", "point", "points"})
# the first bytes of the image formats pixelwise reads, for embedded images (imageData has no name)
MAGIC = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"II*\x00": ".tif", b"MM\x00*": ".tif"}
Shape = tuple[str, str, list[tuple[float, float]], Any]  # label, kind, points, embedded mask (kind "mask")


def read(source: Path, options: ImportOptions) -> ImportedDataset:
    if not source.is_dir():
        raise PixelwiseError(f"{source}: not a folder; give the folder of LabelMe JSON files")
    files = sorted(path for path in source.rglob("*.json") if not path.name.startswith("."))
    if not files:
        raise PixelwiseError(f"{source}: no .json files; give the folder LabelMe saved its JSON files in")
    skipped: Counter[str] = Counter()
    parsed = [(file, *_parse(file, skipped, options.images)) for file in files]
    note_skipped(dict(skipped), source=str(source), why="lines and points have no area to paint")
    names = sorted({label for _, _, _, shapes in parsed for label, *_ in shapes})
    classes = shape_classes(names, None, options, source=str(source))
    records = []
    for file, image, size, shapes in parsed:
        layers = [
            Layer(classes.values[label], _drawing(kind, points, extra, size)) for label, kind, points, extra in shapes
        ]
        records.append(ImportedImage(file.stem, image, size, _painter(size, classes.fill, layers)))
    unique_stems([(record.stem, file) for record, file in zip(records, files, strict=True)], source=str(source))
    check_empty([file.name for file, _, _, shapes in parsed if not shapes], options, source=str(source))
    return ImportedDataset("labelme", source, classes.spec, tuple(records))


def _parse(file: Path, skipped: Counter[str], images: Path | None) -> tuple[ImageFile, tuple[int, int], list[Shape]]:
    try:
        document = json.loads(file.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PixelwiseError(f"{file}: not valid JSON ({error}); fix or remove it") from None
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise PixelwiseError(
            f"{file}: not a LabelMe file (no 'shapes' list); keep only LabelMe's JSON files in the folder"
        )
    image = _image(file, document, images)
    size = image.size()
    declared = (document.get("imageHeight"), document.get("imageWidth"))
    if None not in declared and declared != size:
        raise PixelwiseError(
            f"{file}: the image {image.name} is {size[1]} × {size[0]} but the file says {declared[1]} × {declared[0]} "
            "(width × height); label these very images"
        )
    shapes: list[Shape] = []
    for position, shape in enumerate(document["shapes"], start=1):
        where = f"{file}: shape {position}"
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise PixelwiseError(f"{where} has no label; fix the file")
        kind = shape.get("shape_type") or "polygon"  # LabelMe writes None for polygons in old files
        if kind in NO_AREA:
            skipped[f"{kind} shape(s)"] += 1
            continue
        points = _points(shape.get("points"), where)
        if kind == "polygon" and len(points) < 3:
            raise PixelwiseError(
                f"{where}: a polygon of {len(points)} point(s); a polygon needs at least 3, fix or delete it"
            )
        if kind in ("rectangle", "circle", "mask") and len(points) != 2:
            raise PixelwiseError(f"{where}: a {kind} has 2 points, this one {len(points)}; fix the file")
        if kind not in ("polygon", "rectangle", "circle", "mask"):
            raise PixelwiseError(
                f"{where}: shape_type {kind!r} is not one of LabelMe's (polygon, rectangle, circle, mask, line, "
                "linestrip, point); fix the file"
            )
        extra = _embedded_mask(shape.get("mask"), points, size, where) if kind == "mask" else None
        shapes.append((shape["label"], kind, points, extra))
    return image, size, shapes


def _points(value: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(value, list) or not all(isinstance(point, list) and len(point) == 2 for point in value):
        raise PixelwiseError(f"{where}: points must be a list of [x, y]; fix the file")
    return [(number(x, "x", source=where), number(y, "y", source=where)) for x, y in value]


def _image(file: Path, document: dict[str, Any], images: Path | None) -> ImageFile:
    # LabelMe on Windows writes imagePath with backslashes
    image_path = str(document.get("imagePath") or "")
    relative = PurePosixPath(PureWindowsPath(image_path).as_posix()) if image_path else None
    if images is not None:
        if relative is None:
            raise PixelwiseError(f"{file}: no imagePath, so its image cannot be found in --images {images}")
        for candidate in (images / relative, images / relative.name):
            if candidate.is_file():
                return ImageFile(str(candidate), candidate.suffix, path=candidate)
        raise PixelwiseError(f"{file}: its image {relative.name} is not in --images {images}; give the images' folder")
    data = document.get("imageData")
    if isinstance(data, str) and data:
        suffix = next((ending for magic, ending in MAGIC.items() if _image_data(file, data).startswith(magic)), None)
        if suffix is None:
            raise PixelwiseError(
                f"{file}: imageData is no PNG, JPEG, BMP or TIFF image; save the file again in LabelMe"
            )
        # read again when written, rather than holding every embedded image of the folder in memory
        return ImageFile(f"{file} (imageData)", suffix, read=lambda: _image_data(file))
    if relative is None:
        raise PixelwiseError(f"{file}: neither imageData nor imagePath; save the file again in LabelMe")
    path = file.parent / relative
    if not path.is_file():
        raise PixelwiseError(f"{file}: its image {path} is not there; give the images' folder with --images DIR")
    return ImageFile(str(path), path.suffix, path=path)


def _image_data(file: Path, data: str | None = None) -> bytes:
    """The bytes of the image embedded in ``file`` (its ``imageData``, already read as ``data``)."""
    if data is None:
        data = str(json.loads(file.read_text(encoding="utf-8-sig"))["imageData"])
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PixelwiseError(f"{file}: imageData is not base64; save the file again in LabelMe") from None


def _embedded_mask(value: Any, points: list[tuple[float, float]], size: tuple[int, int], where: str) -> np.ndarray:
    """A ``mask`` shape's PNG as (h, w) bool, checked to fit its box ``points`` inside the image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(str(value), validate=True)), formats=["PNG"]) as picture:
            mask = np.asarray(picture.convert("L")) > 0
    except Exception:
        raise PixelwiseError(f"{where}: its mask is not a PNG in base64; fix the file") from None
    (left, top), (right, bottom) = ((int(x), int(y)) for x, y in points)
    if (
        mask.shape != (bottom - top + 1, right - left + 1)
        or left < 0
        or top < 0
        or bottom >= size[0]
        or right >= size[1]
    ):
        raise PixelwiseError(
            f"{where}: its {mask.shape[1]} × {mask.shape[0]} mask does not fill its box ({left}, {top})-({right}, "
            f"{bottom}) inside the {size[1]} × {size[0]} image; fix the file"
        )
    return mask


def _drawing(kind: str, points: list[tuple[float, float]], extra: Any, size: tuple[int, int]) -> Callable[[], Patch]:
    def draw() -> Patch:
        from PIL import Image, ImageDraw

        height, width = size
        if kind == "mask":
            (left, top), _ = ((int(x), int(y)) for x, y in points)
            return Patch(extra, top, left)
        picture = Image.new("L", (width, height), 0)
        pen = ImageDraw.Draw(picture)
        if kind == "rectangle":
            (x0, y0), (x1, y1) = points
            pen.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
        elif kind == "circle":
            (cx, cy), (px, py) = points
            radius = math.hypot(cx - px, cy - py)
            pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=1, fill=1)
        else:
            pen.polygon(points, outline=1, fill=1)
        # on the whole image: Pillow's edges for coordinates shifted to a box could differ by a rounding
        return Patch(np.asarray(picture, dtype=bool))

    return draw


def _painter(size: tuple[int, int], fill: int, layers: list[Layer]) -> Callable[[], np.ndarray]:
    return lambda: paint(size, fill, layers)


IMPORTER = Importer(
    name="labelme",
    description="LabelMe JSON files: polygons, rectangles, circles, masks",
    source="a folder of .json",
    options=("images", "uncovered", "empty_images", "background"),
    read=read,
)
