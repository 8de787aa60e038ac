"""File bytes -> arrays: which library decodes which format, and the checks made before any pixel is decoded.

TIFF (recognised by its first bytes, not its name) goes through tifffile: 8/16/32-bit integers, signed,
float; planar or interleaved samples, any number of them (the bands of a multispectral image). A TIFF holds one image: a file of several pages (a stack, a time
series, channels stored as pages) is refused, never read as its first page; so is an animated PNG (APNG),
whose frames are as many images. A JPEG with a preview or a depth map behind it (MPO, as cameras and phones
write) is read by its primary image, which that format puts first. PNG, JPEG and BMP go through Pillow,
which is allowed no other format: some of its decoders run external programs (EPS through Ghostscript).
Alpha (RGBA, LA, a TIFF's alpha sample) is dropped here. A mask whose content is JPEG, whatever its name,
is refused: lossy compression changes the labels at every edge.

A TIFF tag tifffile could not read is said in one note naming the file (tifffile's own log line names
none). When the pixels depend on that tag (their size, type, layout or compression), tifffile's fallback
(1 bit, one sample, no compression) gives values that are not the image, and the file is refused.

Two guards read the header: the caller's pixel cap (``max_pixels``, e.g. a web service's), and
``data.memory``'s, which replaces Pillow's pixel-count limit ("decompression bomb") so that any image that
fits in memory is read — a valid 14000 × 14000 scan too — and one that does not is refused with what it
needs; a ``MemoryError`` while decoding anyway is one line naming the file and the memory it needs. What
the arrays mean (scaling to [0, 1], channels, mask encodings) is :mod:`pixelwise.data.io`'s business.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from pixelwise.data.memory import check_fits, memory_error_line, not_enough_memory
from pixelwise.errors import InputError, PixelwiseError

# the formats Pillow may decode (TIFF goes to tifffile), whatever the content claims
PILLOW_FORMATS = ("PNG", "JPEG", "BMP")
# classic and BigTIFF, little- and big-endian
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# the TIFF tags the pixels depend on (size, samples, bits, layout, compression, colour map, alpha)
_PIXEL_TAGS = frozenset(
    {256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339, 347, 530}
)

Source = Path | BinaryIO


class ImageTooLargeError(InputError):
    """An image whose header declares more pixels than the caller allows; raised before any pixel is decoded."""


class Raw(NamedTuple):
    """A decoded file: its pixels (H, W) or (H, W, C) in their stored type, alpha dropped, and the (N, 3)
    palette when the pixels are palette indices."""

    pixels: np.ndarray
    palette: np.ndarray | None


class _Need(NamedTuple):
    """What decoding an image takes: its description for messages and the bytes of memory."""

    description: str
    bytes: int


def decode_raw(source: Source, name: str, *, mask: bool = False, max_pixels: int | None = None) -> Raw:
    """Decode a file or a binary stream into its stored values (``name`` for messages).

    Palette images keep their indices when ``mask`` (a mask's palette indices are its labels) and become RGB
    otherwise; a 1-bit mask is bool. More than ``max_pixels`` pixels raises :class:`ImageTooLargeError`
    before decoding.
    """
    try:
        if is_tiff(source):
            with _tiff_log(name, note=True):
                return Raw(_read_tiff(source, name, mask=mask, max_pixels=max_pixels), None)
        return _read_pillow(source, name, mask=mask, max_pixels=max_pixels)
    except PixelwiseError:
        raise
    except MemoryError as error:
        raise InputError(memory_error_line(error, name)) from None
    except Exception as error:
        # Pillow and tifffile raise OSError, ValueError, SyntaxError, struct.error, zlib.error ... for damaged
        # files; whichever it is, the user needs the file name, not the decoder's traceback
        raise unreadable(name, error) from error


def header_size(source: Source, name: str) -> tuple[int, int]:
    """(H, W) from the header alone; a file that could not be read (several TIFF pages, an animated PNG, a
    damaged TIFF tag the pixels depend on, too large for the memory) fails here already."""
    try:
        if is_tiff(source):
            import tifffile

            # the notes about other damaged tags come once, when the pixels are decoded
            with _tiff_log(name, note=False), tifffile.TiffFile(source) as tiff:
                height, width, _ = _tiff_header(tiff, name, mask=False, max_pixels=None)
                return height, width
        with _pillow().open(source, formats=PILLOW_FORMATS) as image:
            _pillow_header(image, name, mask=False, max_pixels=None)
            return image.height, image.width
    except PixelwiseError:
        raise
    except MemoryError as error:
        raise InputError(memory_error_line(error, name)) from None
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


# --- TIFF ----------------------------------------------------------------------------------------------


def _read_tiff(source: Source, name: str, *, mask: bool, max_pixels: int | None) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(source) as tiff:
        *_, need = _tiff_header(tiff, name, mask=mask, max_pixels=max_pixels)
        series = tiff.series[0]
        axes = series.axes
        extras = getattr(tiff.pages[0], "extrasamples", ())
        alpha = any(int(extra) in (1, 2) for extra in extras)  # associated or unassociated alpha
        with _out_of_memory(name, need):
            data = series.asarray()
    # drop length-1 axes (a 1-sample channel axis) but never Y or X
    keep = [index for index, axis in enumerate(axes) if axis in "YX" or data.shape[index] != 1]
    axes = "".join(axes[index] for index in keep)
    data = data.reshape([data.shape[index] for index in keep])
    if len(axes) == 3 and axes.endswith("YX") and (axes[0] in "SC" or data.shape[0] <= 4):
        # planar storage (samples or channels first): move them last like every other reader
        data, axes = np.moveaxis(data, 0, -1), "YXS"
    if axes == "YX":
        return data
    if len(axes) == 3 and axes.startswith("YX"):
        # any number of samples: grey, RGB, or the bands of a multispectral image
        return data[:, :, :-1] if alpha else data
    raise InputError(
        f"{name}: TIFF of shape {data.shape} (axes {axes}) is not a 2D image of one or more bands; "
        "save a single plane or its bands as the samples of one page"
    )


def _tiff_header(tiff: Any, name: str, *, mask: bool, max_pixels: int | None) -> tuple[int, int, _Need]:
    """(H, W) of a TIFF's one image and what decoding it takes; several pages, too many pixels or too
    little memory refuse the file."""
    pages = len(tiff.pages)
    if pages > 1:
        # the reduced-resolution pages of a pyramid (NewSubfileType 1) are the image again, smaller: level 0
        # is read, as every pyramid reader does; full-size pages beside the first are a stack
        pages = sum(1 for page in tiff.pages if not getattr(page, "is_reduced", False))
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
    need = _check_memory(name, (height, width, channels), np.dtype(series.dtype), mask=mask)
    return height, width, need


class _TiffLog(logging.Filter):
    """Keeps the records of tifffile's logger that a decoding in this thread causes, instead of letting them
    reach stderr without the file's name; records of other threads pass as they would."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        kept: list[str] | None = getattr(self.local, "kept", None)
        if kept is None:
            return True
        kept.append(record.getMessage())
        return False


_TIFF_LOG = _TiffLog()


@contextlib.contextmanager
def _tiff_log(name: str, *, note: bool) -> Iterator[None]:
    """tifffile's log lines while ``name`` is read: a damaged tag the pixels depend on refuses the file, any
    other becomes one note naming the file (when ``note``) once the pixels were read."""
    logger = logging.getLogger("tifffile")
    if _TIFF_LOG not in logger.filters:
        logger.addFilter(_TIFF_LOG)
    outer = getattr(_TIFF_LOG.local, "kept", None)
    kept: list[str] = []
    _TIFF_LOG.local.kept = kept
    try:
        yield
    finally:
        _TIFF_LOG.local.kept = outer
        damaged = [_tag_problem(message) for message in kept]
        vital = [(code, reason) for code, reason in damaged if code in _PIXEL_TAGS]
    if vital:
        code, reason = vital[0]
        raise InputError(
            f"{name}: TIFF tag {_tag_name(code)} is damaged ({reason}); the pixels depend on it and cannot be read "
            "right without it: save the image again from the program that made it"
        )
    if kept and note:
        shown = "; ".join(f"tag {_tag_name(code)}: {reason}" if code else reason for code, reason in damaged[:3])
        more = f"; and {len(kept) - 3} more" if len(kept) > 3 else ""
        warnings.warn(
            f"{name}: damaged TIFF metadata ignored ({shown}{more}); the pixels do not depend on it and were read; "
            "save the image again to repair the file",
            UserWarning,
            stacklevel=5,
        )


def _tag_problem(message: str) -> tuple[int | None, str]:
    """(tag code, reason) from a tifffile log line such as ``<TiffTag.fromfile> raised
    TiffFileError('<tifffile.TiffTag 282 @142> invalid value offset 10000000')``; code None for others."""
    found = re.search(r"TiffTag (\d+) @\d+> ([^'\"]+)", message)
    if found:
        return int(found.group(1)), found.group(2).strip()
    plain = re.sub(r"^<[^>]*>\s*", "", " ".join(message.split()))
    return None, plain


def _tag_name(code: int | None) -> str:
    import tifffile

    name = tifffile.TIFF.TAGS.get(code, None) if code is not None else None
    return f"{code} ({name})" if name else str(code)


# --- Pillow --------------------------------------------------------------------------------------------


def _read_pillow(source: Source, name: str, *, mask: bool, max_pixels: int | None) -> Raw:
    with _pillow().open(source, formats=PILLOW_FORMATS) as opened:
        need = _pillow_header(opened, name, mask=mask, max_pixels=max_pixels)
        with _out_of_memory(name, need):
            opened.load()  # decode now, inside the try: truncated files fail here, not later
            return _pillow_pixels(opened, mask=mask)


def _pillow_pixels(image: Any, *, mask: bool) -> Raw:
    """A decoded Pillow image's stored values (see :class:`Raw`)."""
    mode = image.mode
    if mode == "P" and mask:
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return Raw(np.asarray(image), palette)
    if mode == "1" and mask:
        # a 1-bit mask holds 0 and 1: never 0/255, which would be the binary guess (or background + ignore)
        return Raw(np.asarray(image, dtype=bool), None)
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


def _pillow_header(image: Any, name: str, *, mask: bool, max_pixels: int | None) -> _Need:
    """Refuse an opened (not yet decoded) Pillow image that is several images, JPEG for a mask, over the
    pixel cap or too large for the memory; what decoding it takes."""
    frames = int(getattr(image, "n_frames", 1))
    if image.format == "PNG" and frames > 1:
        raise InputError(
            f"{name}: an animated PNG of {frames} frames; pixelwise reads one still image per file, not its first "
            "frame: save the frame you mean as a plain PNG"
        )
    if mask and image.format in ("JPEG", "MPO"):
        raise InputError(
            f"mask {name} holds a JPEG image; JPEG is lossy and changes label values at edges; save masks as PNG "
            "or TIFF"
        )
    _check_pixels(image.height, image.width, name, max_pixels)
    itemsize = 4 if image.mode in ("I", "F") else 2 if image.mode.startswith("I;16") else 1
    shape = (image.height, image.width, len(image.getbands()))
    return _check_memory(name, shape, np.dtype(f"u{itemsize}"), mask=mask)


# --- guards --------------------------------------------------------------------------------------------


def _check_pixels(height: int, width: int, name: str, max_pixels: int | None) -> None:
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width} × {height} pixels ({height * width / 1e6:.1f} megapixels) is over the limit of "
            f"{max_pixels:,} pixels ({max_pixels / 1e6:.1f} megapixels); send a smaller image"
        )


def _check_memory(name: str, shape: tuple[int, int, int], dtype: np.dtype[Any], *, mask: bool) -> _Need:
    """Refuse a (H, W, C) image whose decoding would not fit in memory (``data.memory``), before decoding it;
    what it takes."""
    height, width, channels = shape
    # an image becomes float32, and types other than uint8 pass through float64 copies for their range
    working = 2 if mask else 4 if dtype.itemsize == 1 else 24
    kind = "grey" if channels == 1 else f"{channels}-channel"
    need = _Need(
        f"a {width} x {height} {kind} image of {8 * dtype.itemsize}-bit values",
        height * width * channels * (dtype.itemsize + working),
    )
    check_fits(name, need.description, need.bytes)
    return need


@contextlib.contextmanager
def _out_of_memory(name: str, need: _Need) -> Iterator[None]:
    """A ``MemoryError`` while decoding (the guard's estimate passed, yet an allocation failed) as one line
    that names the file and what it needs."""
    try:
        yield
    except MemoryError:
        raise not_enough_memory(name, need.description, need.bytes) from None
