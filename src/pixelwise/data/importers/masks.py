"""What the formats of masks share (Pascal VOC, CVAT's "Segmentation mask 1.1", Cityscapes): finding each
mask's image, and turning a mask file's values or colours into class indices.

A mask is decoded when the writer asks for it; its size is checked against its image's header before that.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

import numpy as np

from pixelwise.data.classes import Color
from pixelwise.data.importers.archive import Tree
from pixelwise.data.importers.base import IGNORE_INDEX, ImageFile
from pixelwise.errors import PixelwiseError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def image_index(tree: Tree, folder: str, *, strip: str = "") -> dict[str, ImageFile]:
    """The images under ``folder`` of the export, keyed by their path below it without the suffix (and
    without the ending ``strip``, e.g. Cityscapes' ``_leftImg8bit``); two images of one key are an error."""
    start = folder.rstrip("/") + "/" if folder else ""
    return _index(((name[len(start) :], tree.image(name)) for name in tree.under(folder) if _is_image(name)), strip)


def folder_index(folder: Path, *, strip: str = "") -> dict[str, ImageFile]:
    """``image_index`` for a folder given with ``--images`` (any depth)."""
    if not folder.is_dir():
        raise PixelwiseError(f"--images {folder}: no such folder; give the folder that holds the images")
    paths = sorted(path for path in folder.rglob("*") if path.is_file() and _is_image(path.name))
    return _index(((path.relative_to(folder).as_posix(), _file(path)) for path in paths), strip)


def _file(path: Path) -> ImageFile:
    return ImageFile(str(path), path.suffix, path=path)


def _index(entries: Iterable[tuple[str, ImageFile]], strip: str) -> dict[str, ImageFile]:
    index: dict[str, ImageFile] = {}
    for relative, image in entries:
        key = str(PurePosixPath(relative).with_suffix(""))
        key = key.removesuffix(strip) if strip else key
        if key in index:
            raise PixelwiseError(
                f"{index[key].name} and {image.name} are two images of one name; keep one of them (the masks are "
                "paired with images by name)"
            )
        index[key] = image
    return index


def find_image(index: Mapping[str, ImageFile], key: str) -> ImageFile | None:
    """The image of ``key`` (``sub/a``), or of its last part (``a``) when the images are kept flat."""
    found = index.get(key)
    if found is None and "/" in key:
        found = index.get(key.rsplit("/", 1)[1])
    return found


def _is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not PurePosixPath(name).name.startswith(".")


def mask_values(tree: Tree, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A mask file's stored values: (H, W) indices (grey, or palette indices with the (N, 3) palette) or
    (H, W, 3) colours (palette None)."""
    from pixelwise.data.decode import decode_raw

    raw = decode_raw(io.BytesIO(tree.read(name)), tree.where(name), mask=True)
    pixels = raw.pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3 and pixels.shape[2] != 3:
        raise PixelwiseError(f"{tree.where(name)}: a mask of {pixels.shape[2]} channels; give index or RGB masks")
    if pixels.dtype != np.uint8:
        raise PixelwiseError(f"{tree.where(name)}: a {pixels.dtype} mask; these exports hold 8-bit masks")
    return pixels, raw.palette


def by_colour(
    pixels: np.ndarray, palette: np.ndarray | None, colours: Mapping[Color, int], *, where: str
) -> np.ndarray:
    """(H, W) class indices of a colour mask (RGB, a palette image's colours, or grey as (g, g, g)) through
    ``colours``; a colour that is no class is an error listing it."""
    if palette is not None:
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: len(palette)] = palette[:256]
        pixels = table[pixels]
    elif pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    codes = (pixels[:, :, 0].astype(np.int32) << 16) | (pixels[:, :, 1].astype(np.int32) << 8) | pixels[:, :, 2]
    unique, inverse = np.unique(codes, return_inverse=True)
    table_of = {(color[0] << 16) | (color[1] << 8) | color[2]: index for color, index in colours.items()}
    unknown = [int(code) for code in unique if int(code) not in table_of]
    if unknown:
        shown = ", ".join(str([code >> 16, (code >> 8) & 255, code & 255]) for code in unknown[:5])
        raise PixelwiseError(
            f"{where} has {len(unknown)} colour(s) that no label of the export has: {shown}; fix the mask or add the "
            "labels to labelmap.txt"
        )
    lookup = np.array([table_of[int(code)] for code in unique], dtype=np.uint8)
    return lookup[inverse.reshape(codes.shape)]


def by_index(pixels: np.ndarray, num_classes: int, *, where: str) -> np.ndarray:
    """(H, W) class indices of an index mask: values 0..K-1 and 255 (ignore); any other is an error."""
    if pixels.ndim != 2:
        raise PixelwiseError(f"{where} is a colour mask; this export's masks hold class indices (palette or grey)")
    values = np.unique(pixels)
    bad = [int(value) for value in values if value >= num_classes and value != IGNORE_INDEX]
    if bad:
        raise PixelwiseError(
            f"{where} has values {bad[:10]} outside the classes 0..{num_classes - 1} and {IGNORE_INDEX} (ignore); "
            "fix the mask"
        )
    return pixels.astype(np.uint8)


def check_sizes(image: ImageFile, tree: Tree, name: str) -> tuple[int, int]:
    """(H, W) of an image and its mask from their headers; a mask of another size is an error."""
    from pixelwise.data.decode import header_size

    size = image.size()
    with io.BytesIO(tree.read(name)) as data:
        mask_size = header_size(data, tree.where(name))
    if mask_size != size:
        raise PixelwiseError(
            f"{tree.where(name)} is {mask_size[1]} × {mask_size[0]} but its image {image.name} is "
            f"{size[1]} × {size[0]} (width × height); export the masks of these very images"
        )
    return size
