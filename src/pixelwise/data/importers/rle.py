"""COCO masks through pycocotools, the reference implementation (the ``[coco]`` extra).

Polygons are rasterised exactly as COCO's own ``annToRLE`` does: ``frPyObjects`` on the annotation's
polygons, ``merge``, ``decode``. We do not rasterise them ourselves, even without the extra: pycocotools
upsamples the outline five times and rounds by C's truncation, and any other rasteriser differs from it at
the edges; the masks a COCO file means are the ones pycocotools decodes (and CVAT's own mask export draws
polygons and boxes through it too). pycocotools ships compiled wheels for Linux, macOS and Windows.

pycocotools decodes run lengths without checking them (a short run list leaves pixels uninitialised), so
every RLE is checked here first: ``check_rle`` reads the counts of a compressed string with the same
6-bit scheme as pycocotools' ``rleFrString`` and demands non-negative runs that add up to H × W.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixelwise.data.importers.base import Patch
from pixelwise.errors import PixelwiseError

EXTRA = "pip install 'pixelwise[coco]'"


def mask_api(what: str) -> Any:
    """``pycocotools.mask``, or one line saying that ``what`` needs the ``[coco]`` extra."""
    try:
        from pycocotools import mask
    except ImportError:
        raise PixelwiseError(f"{what} needs pycocotools; install it with {EXTRA}") from None
    return mask


def check_polygons(polygons: Any, *, where: str) -> list[list[float]]:
    """COCO's polygon list ``[[x1, y1, x2, y2, ...], ...]`` as floats; fewer than 3 points is an error."""
    if not isinstance(polygons, list) or not polygons:
        raise PixelwiseError(f"{where}: segmentation {_short(polygons)} is neither polygons nor an RLE; fix the export")
    checked: list[list[float]] = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not all(_is_number(value) for value in polygon):
            raise PixelwiseError(f"{where}: polygon {_short(polygon)} is not a list of numbers; fix the export")
        if len(polygon) % 2:
            raise PixelwiseError(f"{where}: a polygon has {len(polygon)} coordinates, an odd number; give x, y pairs")
        if len(polygon) < 6:
            raise PixelwiseError(
                f"{where}: a polygon of {len(polygon) // 2} point(s); a polygon needs at least 3, fix or delete it"
            )
        checked.append([float(value) for value in polygon])
    return checked


def check_rle(segmentation: dict[str, Any], size: tuple[int, int], *, where: str) -> dict[str, Any]:
    """An RLE ``{"size": [h, w], "counts": ...}`` (a list: uncompressed; a string: compressed), checked
    against the image's ``size`` (H, W): runs non-negative, adding up to H × W. Returns it as given."""
    if set(segmentation) - {"size", "counts"} or "counts" not in segmentation or "size" not in segmentation:
        raise PixelwiseError(
            f"{where}: an RLE has the keys size and counts, got {sorted(segmentation)}; fix the export"
        )
    given = segmentation["size"]
    if not (isinstance(given, list) and len(given) == 2 and all(_is_whole(value) for value in given)):
        raise PixelwiseError(f"{where}: RLE size {_short(given)} is not [height, width]; fix the export")
    if tuple(given) != size:
        raise PixelwiseError(
            f"{where}: RLE size {given} is not the image's [height, width] {list(size)}; fix the export"
        )
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(_is_whole(value) and value >= 0 for value in counts):
            raise PixelwiseError(f"{where}: RLE counts must be whole numbers >= 0; fix the export")
        runs = [int(value) for value in counts]
    elif isinstance(counts, str):
        runs = counts_from_string(counts, where=where)
    else:
        raise PixelwiseError(f"{where}: RLE counts {_short(counts)} are neither a list nor a string; fix the export")
    if sum(runs) != size[0] * size[1]:
        raise PixelwiseError(
            f"{where}: malformed RLE: its runs cover {sum(runs)} pixels, the image has {size[0]} × {size[1]} = "
            f"{size[0] * size[1]}; fix the export"
        )
    return segmentation


def counts_from_string(counts: str, *, where: str) -> list[int]:
    """The run lengths of a compressed COCO RLE: 5 bits per character (offset 48), a continuation bit, a sign
    bit on the last character, and from the third run on each value relative to the run two before."""
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise PixelwiseError(f"{where}: malformed RLE: the counts string ends inside a number; fix the export")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise PixelwiseError(
                    f"{where}: malformed RLE: {counts[position]!r} is not a character of COCO's counts; fix the export"
                )
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value -= 1 << shift  # the sign bit: a negative difference
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise PixelwiseError(f"{where}: malformed RLE: a negative run length; fix the export")
        runs.append(value)
    return runs


def polygon_patch(polygons: Sequence[Sequence[float]], size: tuple[int, int]) -> Patch:
    """The union of ``polygons`` (checked by ``check_polygons``), as pycocotools draws them, cropped to its box."""
    mask = mask_api("rasterising polygons")
    height, width = size
    return _patch(mask, mask.merge(mask.frPyObjects([list(polygon) for polygon in polygons], height, width)))


def rle_patch(segmentation: dict[str, Any], size: tuple[int, int]) -> Patch:
    """The pixels of an RLE checked by ``check_rle``, cropped to their box."""
    mask = mask_api("decoding COCO RLE masks")
    height, width = size
    if isinstance(segmentation["counts"], list):
        encoded = mask.frPyObjects(segmentation, height, width)
    else:
        encoded = {"size": [height, width], "counts": segmentation["counts"].encode("ascii")}
    return _patch(mask, encoded)


def polygon_mask(polygons: Sequence[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: ``polygon_patch`` on the whole image."""
    return _whole(polygon_patch(polygons, size), size)


def rle_mask(segmentation: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: ``rle_patch`` on the whole image."""
    return _whole(rle_patch(segmentation, size), size)


def _patch(mask: Any, encoded: dict[str, Any]) -> Patch:
    left, top, width, height = (int(value) for value in mask.toBbox(encoded))  # from the runs, not the pixels
    with warnings.catch_warnings():
        # pycocotools' own NumPy 2 deprecation (its __array__ lacks ``copy``): nothing a user can act on
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = mask.decode(encoded)
    return Patch(np.asarray(decoded[top : top + height, left : left + width], dtype=bool), top, left)


def _whole(patch: Patch, size: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(size, dtype=bool)
    canvas[patch.region()] = patch.mask
    return canvas


def encode(binary: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> a compressed RLE ready for JSON: ``{"size": [h, w], "counts": "..."}``."""
    mask = mask_api("writing COCO RLE masks")
    encoded = mask.encode(np.asfortranarray(binary, dtype=np.uint8))
    return {"size": [int(value) for value in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def encode_patch(patch: Patch, size: tuple[int, int]) -> dict[str, Any]:
    """The compressed RLE of a ``patch`` on an image of ``size`` (H, W): ``encode`` of the whole-image mask,
    from the patch's pixels alone (an object of a large image costs its box, not the image)."""
    mask = mask_api("writing COCO RLE masks")
    height, width = size
    bottom, right = patch.top + patch.mask.shape[0], patch.left + patch.mask.shape[1]
    if min(patch.top, patch.left) < 0 or bottom > height or right > width:
        raise ValueError(f"a patch at ({patch.top}, {patch.left}) of {patch.mask.shape} is outside {size}")
    # the pixels' positions in the whole image's column-major order: COCO's runs go down the columns
    across, down = np.nonzero(patch.mask.T)
    positions = (patch.left + across).astype(np.int64) * height + patch.top + down
    starts = np.flatnonzero(np.diff(positions, prepend=-2) != 1)  # where a run of object pixels begins
    ends = np.append(starts[1:], positions.size)
    first, length = positions[starts], ends - starts
    runs = np.empty(2 * starts.size + 1, np.int64)
    runs[0:-1:2] = first - np.concatenate([[0], first[:-1] + length[:-1]])  # background before each run
    runs[1::2] = length
    runs[-1] = height * width - (first[-1] + length[-1] if starts.size else 0)
    if runs.size > 1 and runs[-1] == 0:
        runs = runs[:-1]  # pycocotools ends on the object's run when the object holds the last pixel
    height, width = int(height), int(width)
    encoded = mask.frPyObjects({"size": [height, width], "counts": runs.tolist()}, height, width)
    return {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
