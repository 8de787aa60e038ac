"""File bytes -> arrays: which library decodes which format, and the checks made before decoding.

TIFF files (recognised by their first bytes, not their names) go through tifffile; PNG, JPEG and BMP through
Pillow, which is allowed no other format: some of its decoders run external programs (EPS through
Ghostscript). A caller's pixel cap is checked on the header, before any pixel is decoded. What the arrays
mean (scaling to [0, 1], channels, mask encodings) is :mod:`pixelwise.data.io`'s business.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pixelwise.errors import PixelwiseError

# the formats Pillow may decode (TIFF goes to tifffile): those of IMAGE_SUFFIXES, whatever the content claims
PILLOW_FORMATS = ("PNG", "JPEG", "BMP")
# classic and BigTIFF, little- and big-endian
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class ImageTooLargeError(PixelwiseError):
    """An image whose header declares more pixels than the caller allows; raised before any pixel is decoded."""


def decode_raw(
    source: Path | BinaryIO, name: str, *, keep_palette: bool = False, max_pixels: int | None = None
) -> tuple[np.ndarray, bool]:
    """A file or a binary stream -> (array of the stored type, whether it holds palette indices); ``name`` for messages; refuses over ``max_pixels``."""
    try:
        if is_tiff(source):
            return _read_tiff(source, name, max_pixels), False
        return _read_pillow(source, name, keep_palette=keep_palette, max_pixels=max_pixels)
    except PixelwiseError:
        raise
    except Exception as error:
        # Pillow and tifffile raise OSError, ValueError, SyntaxError, struct.error, zlib.error ... for damaged
        # files; whichever it is, the user needs the file name, not the decoder's traceback
        raise unreadable(name, error) from error


def unreadable(name: str, error: BaseException) -> PixelwiseError:
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        # Pillow's own message names a file object, useless for bytes
        reason = "not a PNG, JPEG, BMP or TIFF image"
    else:
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
    return PixelwiseError(f"{name}: cannot read the image ({reason}); the file is damaged or not an image")


def is_tiff(source: Path | BinaryIO) -> bool:
    """Whether the file or stream starts like a TIFF (the stream's position is kept)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(4)
    else:
        position = source.tell()
        head = source.read(4)
        source.seek(position)
    return head in _TIFF_MAGIC


def _check_pixels(height: int, width: int, name: str, max_pixels: int | None) -> None:
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width} × {height} pixels ({height * width / 1e6:.1f} megapixels) is over the limit of "
            f"{max_pixels:,} pixels ({max_pixels / 1e6:.1f} megapixels); send a smaller image"
        )


def _read_tiff(source: Path | BinaryIO, name: str, max_pixels: int | None) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(source) as tiff:
        series = tiff.series[0]
        # the layout is checked on the header, so a volume or an oversized plane is refused undecoded
        axes, shape = _tiff_layout(series.axes, tuple(series.shape), name)
        _check_pixels(shape[axes.index("Y")], shape[axes.index("X")], name, max_pixels)
        data = series.asarray().reshape(shape)
    if axes[0] not in "YX":
        # planar storage (samples or channels first): move them last like every other reader
        return np.moveaxis(data, 0, -1)
    return data


def _tiff_layout(axes: str, shape: tuple[int, ...], name: str) -> tuple[str, tuple[int, ...]]:
    """The axes and shape of a TIFF series without its length-1 axes, if that is a 2D grey or RGB(A) image."""
    # drop length-1 axes (a 1-page stack, a 1-sample channel axis) but never Y or X
    keep = [index for index, axis in enumerate(axes) if axis in "YX" or shape[index] != 1]
    axes = "".join(axes[index] for index in keep)
    shape = tuple(shape[index] for index in keep)
    planar = len(axes) == 3 and axes.endswith("YX") and shape[0] <= 4
    interleaved = len(axes) == 3 and axes.startswith("YX") and shape[2] <= 4
    if axes == "YX" or planar or interleaved:
        return axes, shape
    raise PixelwiseError(
        f"{name}: TIFF of shape {shape} (axes {axes}) is not a 2D grey or RGB image; "
        "save a single plane (grey) or 3 channels (RGB)"
    )


def _read_pillow(
    source: Path | BinaryIO, name: str, *, keep_palette: bool, max_pixels: int | None = None
) -> tuple[np.ndarray, bool]:
    from PIL import Image

    try:
        opened = Image.open(source, formats=PILLOW_FORMATS)
    except Image.DecompressionBombError as error:
        # Pillow refuses sizes past twice its own bomb limit before the caller's cap can be checked
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        if max_pixels is None or claimed is None:
            raise
        raise ImageTooLargeError(
            f"{name}: {int(claimed[1]) / 1e6:.1f} megapixels is over the limit of {max_pixels:,} pixels "
            f"({max_pixels / 1e6:.1f} megapixels); send a smaller image"
        ) from None
    with opened:
        width, height = opened.size
        _check_pixels(height, width, name, max_pixels)
        opened.load()  # decode now, inside the try: truncated files fail here, not later
        image: Image.Image = opened
        mode = image.mode
        if mode == "P" and keep_palette:
            return np.asarray(image), True
        if mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif mode == "1":
            image = image.convert("L")
        elif mode.startswith("I;16"):
            # Pillow's 16-bit modes become uint16 arrays; make the byte order native
            return np.asarray(image).astype(np.uint16), False
        return np.asarray(image), False
