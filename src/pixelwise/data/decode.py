"""File bytes -> arrays: which library decodes which format, and the checks made before any pixel is decoded.

TIFF (recognised by its first bytes, not its name) goes through tifffile: 8/16/32-bit integers, signed,
float; planar or interleaved samples. A TIFF holds one image: a file of several pages (a stack, a time
series, channels stored as pages) is refused, never read as its first page. PNG, JPEG and BMP go through
Pillow, which is allowed no other format: some of its decoders run external programs (EPS through
Ghostscript). Alpha (RGBA, LA, a TIFF's alpha sample) is dropped here.

Two guards read the header: the caller's pixel cap (``max_pixels``, e.g. a web service's), and
``data.memory``'s, which replaces Pillow's pixel-count limit ("decompression bomb") so that any image that
fits in memory is read — a valid 14000 × 14000 scan too — and one that does not is refused with what it
needs. What the arrays mean (scaling to [0, 1], channels, mask encodings) is :mod:`pixelwise.data.io`'s
business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from pixelwise.data.memory import check_fits
from pixelwise.errors import InputError, PixelwiseError

# the formats Pillow may decode (TIFF goes to tifffile), whatever the content claims
PILLOW_FORMATS = ("PNG", "JPEG", "BMP")
# classic and BigTIFF, little- and big-endian
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

Source = Path | BinaryIO


class ImageTooLargeError(InputError):
    """An image whose header declares more pixels than the caller allows; raised before any pixel is decoded."""


class Raw(NamedTuple):
    """A decoded file: its pixels (H, W) or (H, W, C) in their stored type, alpha dropped, and the (N, 3)
    palette when the pixels are palette indices."""

    pixels: np.ndarray
    palette: np.ndarray | None


def decode_raw(source: Source, name: str, *, mask: bool = False, max_pixels: int | None = None) -> Raw:
    """Decode a file or a binary stream into its stored values (``name`` for messages).

    Palette images keep their indices when ``mask`` (a mask's palette indices are its labels) and become RGB
    otherwise. More than ``max_pixels`` pixels raises :class:`ImageTooLargeError` before decoding.
    """
    try:
        if is_tiff(source):
            return Raw(_read_tiff(source, name, mask=mask, max_pixels=max_pixels), None)
        return _read_pillow(source, name, mask=mask, max_pixels=max_pixels)
    except PixelwiseError:
        raise
    except Exception as error:
        # Pillow and tifffile raise OSError, ValueError, SyntaxError, struct.error, zlib.error ... for damaged
        # files; whichever it is, the user needs the file name, not the decoder's traceback
        raise unreadable(name, error) from error


def header_size(source: Source, name: str) -> tuple[int, int]:
    """(H, W) from the header alone; a file that could not be read (several TIFF pages, too large for the
    memory) fails here already."""
    try:
        if is_tiff(source):
            import tifffile

            with tifffile.TiffFile(source) as tiff:
                return _tiff_header(tiff, name, mask=False, max_pixels=None)
        with _pillow().open(source, formats=PILLOW_FORMATS) as image:
            _pillow_header(image, name, mask=False, max_pixels=None)
            return image.height, image.width
    except PixelwiseError:
        raise
    except Exception as error:
        raise unreadable(name, error) from error


def unreadable(name: str, error: BaseException) -> PixelwiseError:
    """The one line for a file a decoder could not read."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        # Pillow's own message names a file object, useless for bytes
        reason = "not a PNG, JPEG, BMP or TIFF image"
    else:
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
    return InputError(f"{name}: cannot read the image ({reason}); the file is damaged or not an image")


def is_tiff(source: Source) -> bool:
    """Whether the file or stream starts like a TIFF (the stream's position is kept)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(4)
    else:
        position = source.tell()
        head = source.read(4)
        source.seek(position)
    return head in _TIFF_MAGIC


def _read_tiff(source: Source, name: str, *, mask: bool, max_pixels: int | None) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(source) as tiff:
        _tiff_header(tiff, name, mask=mask, max_pixels=max_pixels)
        series = tiff.series[0]
        axes = series.axes
        extras = getattr(tiff.pages[0], "extrasamples", ())
        alpha = any(int(extra) in (1, 2) for extra in extras)  # associated or unassociated alpha
        data = series.asarray()
    # drop length-1 axes (a 1-sample channel axis) but never Y or X
    keep = [index for index, axis in enumerate(axes) if axis in "YX" or data.shape[index] != 1]
    axes = "".join(axes[index] for index in keep)
    data = data.reshape([data.shape[index] for index in keep])
    if len(axes) == 3 and axes.endswith("YX") and data.shape[0] <= 4:
        # planar storage (samples or channels first): move them last like every other reader
        data, axes = np.moveaxis(data, 0, -1), "YXS"
    if axes == "YX":
        return data
    if len(axes) == 3 and axes.startswith("YX") and data.shape[2] <= 4:
        return data[:, :, :-1] if alpha else data
    raise InputError(
        f"{name}: TIFF of shape {data.shape} (axes {axes}) is not a 2D grey or RGB image; "
        "save a single plane (grey) or 3 channels (RGB)"
    )


def _tiff_header(tiff: Any, name: str, *, mask: bool, max_pixels: int | None) -> tuple[int, int]:
    """(H, W) of a TIFF's one image; several pages, too many pixels or too little memory refuse the file."""
    pages = len(tiff.pages)
    if pages > 1:
        raise InputError(
            f"{name}: a TIFF of {pages} pages (a stack, a time series or channels stored as pages); pixelwise "
            "reads one 2D image per file, not its first page: save each page, or one RGB page, as its own file"
        )
    series = tiff.series[0]
    shape = dict(zip(series.axes, series.shape, strict=True))
    height, width = int(shape.get("Y", 1)), int(shape.get("X", 1))
    _check_pixels(height, width, name, max_pixels)
    channels = int(np.prod(series.shape, dtype=np.int64)) // max(height * width, 1)
    _check_memory(name, (height, width, channels), np.dtype(series.dtype), mask=mask)
    return height, width


def _read_pillow(source: Source, name: str, *, mask: bool, max_pixels: int | None) -> Raw:
    with _pillow().open(source, formats=PILLOW_FORMATS) as opened:
        _pillow_header(opened, name, mask=mask, max_pixels=max_pixels)
        opened.load()  # decode now, inside the try: truncated files fail here, not later
        image: Any = opened
        mode = image.mode
        if mode == "P" and mask:
            palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
            return Raw(np.asarray(image), palette)
        if mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif mode == "1":
            image = image.convert("L")
        elif mode.startswith("I;16"):
            # Pillow's 16-bit modes become uint16 arrays; make the byte order native
            return Raw(np.asarray(image).astype(np.uint16), None)
        pixels = np.asarray(image)
        if image.mode in ("LA", "La", "RGBA", "RGBa", "RGBX"):
            pixels = pixels[:, :, :-1]  # alpha (or padding) is not part of the picture
        return Raw(pixels, None)


def _pillow() -> Any:
    """PIL.Image with its decompression-bomb limit off: ``_check_memory`` guards by the memory an image
    needs instead of by its pixel count, so that a valid 14000 x 14000 scan is read."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image


def _pillow_header(image: Any, name: str, *, mask: bool, max_pixels: int | None) -> None:
    """Refuse an opened (not yet decoded) Pillow image over the pixel cap or too large for the memory."""
    _check_pixels(image.height, image.width, name, max_pixels)
    itemsize = 4 if image.mode in ("I", "F") else 2 if image.mode.startswith("I;16") else 1
    _check_memory(name, (image.height, image.width, len(image.getbands())), np.dtype(f"u{itemsize}"), mask=mask)


def _check_pixels(height: int, width: int, name: str, max_pixels: int | None) -> None:
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width} × {height} pixels ({height * width / 1e6:.1f} megapixels) is over the limit of "
            f"{max_pixels:,} pixels ({max_pixels / 1e6:.1f} megapixels); send a smaller image"
        )


def _check_memory(name: str, shape: tuple[int, int, int], dtype: np.dtype[Any], *, mask: bool) -> None:
    """Refuse a (H, W, C) image whose decoding would not fit in memory (``data.memory``), before decoding it."""
    height, width, channels = shape
    # an image becomes float32, and types other than uint8 pass through float64 copies for their range
    working = 2 if mask else 4 if dtype.itemsize == 1 else 24
    needed = height * width * channels * (dtype.itemsize + working)
    kind = "grey" if channels == 1 else f"{channels}-channel"
    check_fits(name, f"a {width} x {height} {kind} image of {8 * dtype.itemsize}-bit values", needed)
