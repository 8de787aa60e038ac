"""Read images and masks in the encodings people actually have; write masks as palette PNGs.

Images come back as float32 (H, W, C), values in [0, 1], C the image's bands (1 grey, 3 RGB, or any other
number: a multispectral TIFF, an ``.npy`` array); how stored values become [0, 1] is ``data.bands``' rule:

- uint8 (and 1-bit) images are divided by 255 (they fill their range by convention);
- every other type (uint16, int16 e.g. CT in Hounsfield units, int32, float) is scaled per image by its
  robust range, the 0.5th and 99.5th percentiles of all its channels together, and clipped to [0, 1]. A
  16-bit microscope image often uses a few hundred of its 65,536 levels, so dividing by 65,535 would leave it
  black; HU and float images have no fixed range at all. The percentiles (not min/max) keep one hot pixel
  from squashing the rest. If the two percentiles meet (an image that is almost constant), min and max are
  used instead; a constant image becomes zeros. Non-finite floats map to 0 (NaN, -inf) or 1 (+inf). The
  price: intensities are not comparable across images of such types, which is what per-image normalisation
  means. A dataset of multispectral or georeferenced images is scaled per band by its training set's range
  instead (``data.folder``, ``data.rasters``), and so are the images a model trained on them predicts.
- alpha is dropped (RGBA, LA, a TIFF's alpha sample), palette images become RGB, CMYK/YCbCr/LAB/HSV
  become RGB. Other channels are kept as bands. EXIF rotation is not applied: the mask of a photo is stored
  in the photo's pixel grid, not the rotated view.

Files are decoded by ``data.decode``: TIFF through tifffile (one image per file: several pages are refused,
never read as the first page), PNG, JPEG and BMP through Pillow; any size that fits in memory is read.
Pillow reduces 16-bit RGB PNGs to 8 bits per channel; store such data as TIFF to keep the precision.
:func:`decode_image` reads an image from bytes (an upload) through the same code as :func:`read_image`, and
can refuse, from the header and before decoding, an image of more pixels than the caller allows. ``.npy``
arrays and GDAL rasters (``.jp2``) are read by ``data.rasters``.

Masks come back as (H, W) uint8 with values in 0..K-1 or ``classes.ignore_index``, from index, palette,
RGB colour, 1-bit and 0/255 binary masks (what each means, and when a 0/255 mask is binary: ``data.masks``).
JPEG masks are refused: JPEG is lossy, so label edges come back as values that are no label.

A path that is no regular file (a named pipe, a device such as ``/dev/zero``, a socket, a folder, a link to
any of these or to nothing) is said as what it is and never opened: reading a pipe would wait forever, a
device would never end.

Every problem with a file raises :class:`~pixelwise.errors.PixelwiseError` naming the file and the fix.
"""

from __future__ import annotations

import io
import os
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.data.bands import InputBands, to_unit_range
from pixelwise.data.classes import ClassSpec
from pixelwise.data.decode import Raw, decode_raw, header_size
from pixelwise.data.masks import (
    StoredLabels,
    check_label_range,
    check_palette,
    decode_mask,
    ignore_beside_labels,
    read_0_255,
)
from pixelwise.data.memory import memory_error_line
from pixelwise.data.paths import check_regular_file as check_regular_file
from pixelwise.data.paths import not_a_file as not_a_file
from pixelwise.errors import InputError, PixelwiseError
from pixelwise.files import atomic_path

# the vendors' whole-slide files are images to list and predict on (data.slides reads them by region)
SLIDE_SUFFIXES: frozenset[str] = frozenset({".svs", ".ndpi", ".scn", ".bif"})
IMAGE_SUFFIXES: frozenset[str] = (
    frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy", ".jp2"}) | SLIDE_SUFFIXES
)
LOSSY_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg"})
# files that operating systems drop into folders; never the user's data, so never an error
_IGNORED_NAMES: frozenset[str] = frozenset({"thumbs.db", "desktop.ini"})

# how strongly predicted class colours cover the image in an overlay
OVERLAY_OPACITY = 0.45

PathLike = str | os.PathLike[str]
# suffixes only data.rasters reads (numpy arrays, GDAL formats)
_RASTER_ONLY = frozenset({".npy", ".jp2"})

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as float32 in [0, 1], whatever its format and type (see the module docstring).

    Returns (H, W, C): C = 1 (grey), 3 (RGB) or the image's bands.
    """
    file = Path(path)
    if file.suffix.lower() in _RASTER_ONLY:
        from pixelwise.data.rasters import read_bands

        return read_bands(file)[0]
    raw = _read_raw(file)
    try:
        return _to_unit_range(_to_channels(raw.pixels, str(file)))
    except MemoryError as error:
        raise InputError(memory_error_line(error, file)) from None


def read_stored(path: PathLike) -> np.ndarray:
    """The image's values as stored, not scaled (uint8, uint16, int16, float ...): (H, W, C), every band,
    read as :func:`read_image` reads the file. What measurements that compare images need (the mean
    intensity of objects), where ``read_image``'s per-image scaling would make each image its own unit."""
    file = Path(path)
    if file.suffix.lower() in _RASTER_ONLY:
        from pixelwise.data.rasters import RasterSource

        with RasterSource(file) as source:
            return source.stored(0, 0, source.info.height, source.info.width)
    return _to_channels(_read_raw(file).pixels, str(file))


def decode_image(
    data: bytes, name: str = "upload", *, max_pixels: int | None = None, input_bands: InputBands | None = None
) -> np.ndarray:
    """The image in ``data`` (the bytes of an image file), read exactly as :func:`read_image` reads the file.

    ``name`` names the image in error messages. An image of more than ``max_pixels`` pixels (height ×
    width, from its header) raises :class:`~pixelwise.data.decode.ImageTooLargeError` before it is decoded.
    ``input_bands``: a model's band rule (``data.bands``: its bands, no-data value, band ranges) instead.

    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (5, 3), (255, 0, 0)).save(buffer, format="PNG")
    >>> decode_image(buffer.getvalue()).shape
    (3, 5, 3)
    >>> decode_image(buffer.getvalue(), "red.png", max_pixels=10)
    Traceback (most recent call last):
    ...
    pixelwise.data.decode.ImageTooLargeError: red.png: 5 × 3 pixels (0.0 megapixels) is over the limit of 10 pixels (0.0 megapixels); send a smaller image
    """
    if not data:
        raise InputError(f"{name}: the file is empty (0 bytes); send an image file (PNG, JPEG, TIFF or BMP)")
    if input_bands is not None and input_bands != InputBands():
        from pixelwise.data.rasters import decode_bands

        return decode_bands(data, name, input_bands=input_bands, max_pixels=max_pixels)
    raw = decode_raw(io.BytesIO(data), name, max_pixels=max_pixels)
    return _to_unit_range(_to_channels(raw.pixels, name))


def read_mask(path: PathLike, classes: ClassSpec | None = None) -> np.ndarray:
    """Read a label mask in any of the encodings of the module docstring.

    Returns (H, W) uint8 with values in 0..K-1 or ``classes.ignore_index``. Without ``classes`` only the
    encoding is decoded (values 0..255, no range check; colour masks need ``classes``).
    """
    file = Path(path)
    raw = _read_mask_raw(file)
    try:
        labels, stored = decode_mask(raw.pixels, file, classes, is_palette=raw.palette is not None)
        if stored is not None:
            labels = read_0_255(labels, stored, file, classes)
        if classes is not None:
            check_label_range(labels, file, classes)
            if raw.palette is not None:
                check_palette(labels, raw.palette, file, classes)
    except MemoryError as error:
        raise InputError(memory_error_line(error, file)) from None
    return labels


def stored_labels(path: PathLike) -> StoredLabels:
    """What the mask at ``path`` stores, read literally (see :class:`StoredLabels`): for deciding a folder's
    classes and its 0/255 convention from all its masks at once (``data.folder.infer_classes``)."""
    file = Path(path)
    raw = _read_mask_raw(file)
    try:
        labels, stored = decode_mask(raw.pixels, file, None, is_palette=raw.palette is not None)
    except MemoryError as error:
        raise InputError(memory_error_line(error, file)) from None
    values = np.unique(labels)
    return stored if stored is not None else StoredLabels(values, False, ignore_beside_labels(values))


def write_mask(path: PathLike, labels: np.ndarray, classes: ClassSpec) -> None:
    """Write (H, W) integer labels as a palette PNG coloured by ``classes`` (atomically).

    The palette makes the file readable by eye and by any tool; the stored values stay the labels.
    """
    file = Path(path)
    if file.suffix.lower() != ".png":
        raise PixelwiseError(f"{file}: masks are written as PNG; give a path ending in .png")
    data = encode_mask(labels, classes, name=str(file))
    with atomic_path(file) as tmp:
        tmp.write_bytes(data)


def encode_mask(labels: np.ndarray, classes: ClassSpec, *, name: str = "labels") -> bytes:
    """(H, W) integer labels as the bytes of the palette PNG :func:`write_mask` writes (``name`` for errors)."""
    array = np.asarray(labels)
    if array.ndim != 2:
        raise PixelwiseError(f"{name}: labels must be (H, W), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise PixelwiseError(f"{name}: labels must be integers, got {array.dtype}")
    check_label_range(array, name, classes)

    from PIL import Image

    image = Image.fromarray(array.astype(np.uint8), mode="P")
    image.putpalette(classes.palette().ravel().tolist())
    return _png_bytes(image)


def overlay(image: np.ndarray, labels: np.ndarray, classes: ClassSpec) -> np.ndarray:
    """(H, W, 3) uint8: the image ([0, 1]) with each pixel's class colour blended over it.

    The picture is grey for one or two bands (the first), else the first three bands as red, green and blue:
    a model's bands in its order, so ``--bands 4,3,2,8`` shows bands 4, 3, 2 as a true-colour picture."""
    shown = picture_bands(image)
    rgb = np.repeat(shown, 3, axis=2) if shown.shape[2] == 1 else shown
    colours = classes.colorize(labels).astype(np.float32) / 255
    blended = (1 - OVERLAY_OPACITY) * rgb + OVERLAY_OPACITY * colours
    return np.clip(np.rint(blended * 255), 0, 255).astype(np.uint8)


def picture_bands(image: np.ndarray) -> np.ndarray:
    """The bands of an (H, W, C) image that a picture of it shows: the first as grey for one or two bands,
    else the first three as red, green and blue (a view, no copy)."""
    return image[:, :, :1] if image.shape[2] < 3 else image[:, :, :3]


def encode_overlay(image: np.ndarray, labels: np.ndarray, classes: ClassSpec) -> bytes:
    """The :func:`overlay` of ``image`` and ``labels`` as the bytes of an RGB PNG."""
    from PIL import Image

    return _png_bytes(Image.fromarray(overlay(image, labels, classes)))


def list_images(folder: PathLike, *, skip: Collection[str] = ()) -> list[Path]:
    """The image files of ``folder`` and of its sub-folders, sorted by their path within it; any other file
    is an error that lists it.

    Hidden files and folders (``.DS_Store``, ``._name``, ``.git``) and ``Thumbs.db`` / ``desktop.ini`` are
    skipped, and so are the sub-folders of ``folder`` named in ``skip`` (e.g. a prediction folder's
    ``overlays``). Images in sub-folders are named by their path within ``folder`` (``batch2/a``) wherever
    pixelwise pairs or writes them, so none is dropped and none clashes with another folder's.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise PixelwiseError(f"{directory}: no such folder; give a folder of images")
    images: list[Path] = []
    others: list[str] = []
    for root, folders, files in os.walk(directory, followlinks=True):
        top = Path(root) == directory
        folders[:] = sorted(name for name in folders if not name.startswith(".") and not (top and name in skip))
        for name in files:
            entry = Path(root) / name
            if name.startswith(".") or name.lower() in _IGNORED_NAMES:
                continue
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                images.append(entry)
            else:
                others.append(entry.relative_to(directory).as_posix())
    if others:
        others.sort()
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise PixelwiseError(
            f"{directory} holds files that are not images ({shown}); "
            f"move them out (images end in {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return sorted(images, key=lambda image: image.relative_to(directory).as_posix())


def image_name(path: PathLike, folder: PathLike) -> str:
    """What an image of ``folder`` (or of its sub-folders) is called where it is paired or written: its path
    within ``folder`` without the suffix (``a``, ``batch2/a``)."""
    return Path(path).relative_to(folder).with_suffix("").as_posix()


def image_size(path: PathLike) -> tuple[int, int]:
    """(H, W) of an image or mask file from its header, without decoding the pixels; a file that could not
    be read (several TIFF pages, too large for the memory) fails here already."""
    file = Path(path)
    _check_exists(file)
    from pixelwise.data.raster_files import is_raster, raster_info

    if is_raster(file):  # a GeoTIFF's overviews are pages of its own, which tifffile alone would refuse
        info = raster_info(file)
        return info.height, info.width
    return header_size(file, str(file))


# --- reading -------------------------------------------------------------------------------------------


def _check_exists(file: Path) -> None:
    check_regular_file(file)
    if file.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"{file}: not an image file (expected one of {', '.join(sorted(IMAGE_SUFFIXES))}); convert it or remove it"
        )


def _read_raw(file: Path, *, mask: bool = False) -> Raw:
    """Decode an existing image file (see ``data.decode``); palette indices are kept for a ``mask``."""
    _check_exists(file)
    return decode_raw(file, str(file), mask=mask)


def _to_channels(pixels: np.ndarray, name: str) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W, C), C >= 1: every band kept; alpha was dropped by the readers."""
    if pixels.ndim == 2:
        return pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] < 1:
        raise InputError(f"{name}: an image of shape {pixels.shape}; give an (H, W) or (H, W, C) image")
    return pixels


def _png_bytes(image: PILImage) -> bytes:
    """A Pillow image as the bytes of a PNG file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """Stored values (H, W, C) -> float32 in [0, 1]: uint8 / 255, every other type by its robust range."""
    return to_unit_range(pixels)


# --- masks ---------------------------------------------------------------------------------------------


def _read_mask_raw(file: Path) -> Raw:
    if file.suffix.lower() in LOSSY_SUFFIXES:
        raise InputError(
            f"mask {file} is a JPEG; JPEG is lossy and changes label values at edges; save masks as PNG or TIFF"
        )
    return _read_raw(file, mask=True)
