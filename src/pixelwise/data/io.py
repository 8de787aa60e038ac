"""Read images and masks in the encodings people actually have; write masks as palette PNGs.

Images come back as float32 (H, W, C), C = 1 (grey) or 3 (RGB), values in [0, 1]:

- uint8 (and 1-bit) images are divided by 255 (they fill their range by convention);
- every other type (uint16, int16 e.g. CT in Hounsfield units, int32, float) is scaled per image by its
  robust range, the 0.5th and 99.5th percentiles, and clipped to [0, 1]. A 16-bit microscope image often
  uses a few hundred of its 65,536 levels, so dividing by 65,535 would leave it black; HU and float images
  have no fixed range at all. The percentiles (not min/max) keep one hot pixel from squashing the rest.
  If the two percentiles meet (an image that is almost constant), min and max are used instead; a constant
  image becomes zeros. Non-finite floats map to 0 (NaN, -inf) or 1 (+inf). The price: intensities are not
  comparable across images of such types, which is what per-image normalisation means.
- alpha is dropped (RGBA, LA, a TIFF's alpha sample), palette images become RGB, CMYK/YCbCr/LAB/HSV
  become RGB. Any other number of channels (2 that are not grey + alpha, 4 that are not RGB + alpha) is
  refused rather than guessed at. EXIF rotation is not applied: the mask of a photo is stored in the photo's
  pixel grid, not the rotated view.

Files are decoded by ``data.decode``: TIFF through tifffile (one image per file: several pages are refused,
never read as the first page), PNG, JPEG and BMP through Pillow; any size that fits in memory is read.
Pillow reduces 16-bit RGB PNGs to 8 bits per channel; store such data as TIFF to keep the precision.
:func:`decode_image` reads an image from bytes (an upload) through the same code as :func:`read_image`, and
can refuse, from the header and before decoding, an image of more pixels than the caller allows.

Masks come back as (H, W) uint8 with values in 0..K-1 or ``classes.ignore_index``. Understood encodings:
index masks (grey PNG or integer TIFF), palette PNGs (the palette *indices* are the labels; the colours are
for display, but a palette that gives a used index the colour of *another* class of ``classes`` is refused:
such a mask was saved in another class order), RGB colour masks (each colour looked up in ``classes.colors``; the ignore colour, white, maps to
``ignore_index``) and binary masks stored as 0/255, which become {0, 1} with a notice: read as they are,
255 would be the ignore label and the foreground would silently vanish from loss and metrics (the
MMSegmentation ``reduce_zero_label`` trap). JPEG masks are refused: JPEG is lossy, so label edges come back
as values that are no label.

Every problem with a file raises :class:`~pixelwise.errors.PixelwiseError` naming the file and the fix.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.decode import Raw, decode_raw, header_size
from pixelwise.errors import InputError, PixelwiseError
from pixelwise.files import atomic_path

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
LOSSY_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg"})
# files that operating systems drop into folders; never the user's data, so never an error
_IGNORED_NAMES: frozenset[str] = frozenset({"thumbs.db", "desktop.ini"})
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5

# how strongly predicted class colours cover the image in an overlay
OVERLAY_OPACITY = 0.45

PathLike = str | os.PathLike[str]

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

# folders already told about 0/255 masks: one notice per folder, not one per file
_binary_noticed: set[Path] = set()


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as float32 in [0, 1], whatever its format and type (see the module docstring).

    Returns (H, W, C) with C = 1 (grey) or 3 (RGB).
    """
    file = Path(path)
    return _to_unit_range(_to_channels(_read_raw(file).pixels, str(file)))


def decode_image(data: bytes, name: str = "upload", *, max_pixels: int | None = None) -> np.ndarray:
    """The image in ``data`` (the bytes of an image file), read exactly as :func:`read_image` reads the file.

    ``name`` names the image in error messages. An image of more than ``max_pixels`` pixels (height ×
    width, from its header) raises :class:`~pixelwise.data.decode.ImageTooLargeError` before it is decoded.

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
    raw = decode_raw(io.BytesIO(data), name, max_pixels=max_pixels)
    return _to_unit_range(_to_channels(raw.pixels, name))


def read_mask(path: PathLike, classes: ClassSpec | None = None) -> np.ndarray:
    """Read a label mask in any of the encodings of the module docstring.

    Returns (H, W) uint8 with values in 0..K-1 or ``classes.ignore_index``. Without ``classes`` only the
    encoding is decoded (values 0..255, no range check; colour masks need ``classes``).
    """
    file = Path(path)
    if file.suffix.lower() in LOSSY_SUFFIXES:
        raise InputError(
            f"mask {file} is a JPEG; JPEG is lossy and changes label values at edges; save masks as PNG or TIFF"
        )
    raw = _read_raw(file, mask=True)
    labels = _decode_mask(raw.pixels, file, classes, is_palette=raw.palette is not None)
    if classes is not None:
        _check_label_range(labels, file, classes)
        if raw.palette is not None:
            _check_palette(labels, raw.palette, file, classes)
    return labels


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
    _check_label_range(array, name, classes)

    from PIL import Image

    image = Image.fromarray(array.astype(np.uint8), mode="P")
    image.putpalette(classes.palette().ravel().tolist())
    return _png_bytes(image)


def overlay(image: np.ndarray, labels: np.ndarray, classes: ClassSpec) -> np.ndarray:
    """(H, W, 3) uint8: the image (grey or RGB, [0, 1]) with each pixel's class colour blended over it."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    colours = classes.colorize(labels).astype(np.float32) / 255
    blended = (1 - OVERLAY_OPACITY) * rgb + OVERLAY_OPACITY * colours
    return np.clip(np.rint(blended * 255), 0, 255).astype(np.uint8)


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
    return header_size(file, str(file))


# --- reading -------------------------------------------------------------------------------------------


def _check_exists(file: Path) -> None:
    if not file.is_file():
        raise InputError(f"{file}: no such file; check the path")
    if file.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"{file}: not an image file (expected one of {', '.join(sorted(IMAGE_SUFFIXES))}); convert it or remove it"
        )


def _read_raw(file: Path, *, mask: bool = False) -> Raw:
    """Decode an existing image file (see ``data.decode``); palette indices are kept for a ``mask``."""
    _check_exists(file)
    return decode_raw(file, str(file), mask=mask)


def _to_channels(pixels: np.ndarray, name: str) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W, 1) or (H, W, 3); alpha was dropped by the readers."""
    if pixels.ndim == 2:
        return pixels[:, :, None]
    channels = pixels.shape[2]
    if channels in (1, 3):
        return pixels
    raise InputError(
        f"{name}: an image of {channels} channels{' that are not grey + alpha' if channels == 2 else ''}; "
        "pixelwise reads grey or RGB images (with or without alpha): save one channel or three"
    )


def _png_bytes(image: PILImage) -> bytes:
    """A Pillow image as the bytes of a PNG file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """Stored values -> float32 in [0, 1]: uint8 / 255, every other type by its robust range."""
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(255)
    if pixels.dtype == np.bool_:
        return pixels.astype(np.float32)
    values = pixels.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(pixels.shape, dtype=np.float32)
    low, high = np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if high <= low:
        low, high = finite.min(), finite.max()
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.float32)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    return np.nan_to_num(scaled, nan=0.0).astype(np.float32)


# --- masks ---------------------------------------------------------------------------------------------


def _decode_mask(raw: np.ndarray, file: Path, classes: ClassSpec | None, *, is_palette: bool) -> np.ndarray:
    if raw.ndim == 3:
        if raw.shape[2] == 1:
            raw = raw[:, :, 0]
        elif raw.shape[2] == 3:
            rgb = raw
            # a grey mask saved as RGB has equal channels: its values are the labels
            if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2]):
                raw = rgb[:, :, 0]
            else:
                return _colors_to_labels(rgb, file, classes)
        else:
            raise InputError(f"mask {file} has {raw.shape[2]} channels; give an index or RGB mask")
    if raw.dtype == np.bool_:
        return raw.astype(np.uint8)
    integral = np.issubdtype(raw.dtype, np.integer)
    if not integral and not (np.all(np.isfinite(raw)) and np.array_equal(raw, np.round(raw))):
        raise InputError(
            f"mask {file} has fractional values ({raw.dtype}); masks hold integer labels, save them as such"
        )
    values = np.unique(raw)
    if values.size and (values[0] < 0 or values[-1] > 255):
        shown = _format_values(v for v in values.tolist() if v < 0 or v > 255)
        raise InputError(f"mask {file} has values {shown} outside 0..255; labels must fit in 0..255 (255 = ignore)")
    labels = raw.astype(np.uint8)
    ignore = classes.ignore_index if classes is not None else 255
    num_classes = classes.num_classes if classes is not None else 2
    # a grey 0/255 mask means background/foreground; in a palette PNG index 255 is deliberate (VOC: ignore)
    binary = values.size > 0 and set(values.tolist()) <= {0, 255} and values[-1] == 255
    if binary and not is_palette and num_classes == 2 and ignore == 255:
        _notice_binary(file)
        return (labels == 255).astype(np.uint8)
    return labels


def _notice_binary(file: Path) -> None:
    folder = file.parent.resolve()
    if folder in _binary_noticed:
        return
    _binary_noticed.add(folder)
    warnings.warn(
        f"mask {file} (and others in {file.parent}) stores a binary mask as 0/255; reading 255 as class 1 "
        "(foreground), not as ignore_index. Save masks as 0/1 to silence this notice",
        UserWarning,
        stacklevel=4,
    )


def _colors_to_labels(rgb: np.ndarray, file: Path, classes: ClassSpec | None) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) labels through ``classes.colors``; the ignore colour (white) -> ignore."""
    if classes is None:
        raise InputError(
            f"mask {file} is an RGB colour mask but no classes are given; add a classes.yaml with a colour per class"
        )
    if rgb.dtype != np.uint8:
        raise InputError(f"mask {file}: colour masks must be 8-bit RGB, got {rgb.dtype}")
    table = {_code(color): index for index, color in enumerate(classes.colors)}
    if 0 <= classes.ignore_index <= 255:
        table.setdefault(_code((255, 255, 255)), classes.ignore_index)
    codes = (rgb[:, :, 0].astype(np.int32) << 16) | (rgb[:, :, 1].astype(np.int32) << 8) | rgb[:, :, 2]
    unique, inverse = np.unique(codes, return_inverse=True)
    unknown = [int(code) for code in unique if int(code) not in table]
    if unknown:
        shown = ", ".join(str(_color(code)) for code in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputError(
            f"mask {file} has {len(unknown)} colour(s) that are no class: {shown}{more}; "
            "add them to classes.yaml or fix the mask"
        )
    lookup = np.array([table[int(code)] for code in unique], dtype=np.uint8)
    return lookup[inverse.reshape(codes.shape)]


def _check_palette(labels: np.ndarray, palette: np.ndarray, file: Path, classes: ClassSpec) -> None:
    """Refuse a palette mask whose palette gives a used index the colour of another class: its indices (the
    labels) follow another class order than ``classes``. Other palette colours are display only."""
    colours: dict[tuple[int, ...], int] = {color: index for index, color in enumerate(classes.colors)}
    for index in np.unique(labels).tolist():
        if index >= min(classes.num_classes, len(palette)):
            continue
        color = tuple(int(v) for v in palette[index])
        other = colours.get(color)
        if other is not None and other != index:
            name, other_name = classes.names[index], classes.names[other]
            raise InputError(
                f"mask {file}: its palette gives index {index} ({name}) the colour {list(color)} of class "
                f"{other} ({other_name}), but the index is the label: {other_name} would be read as {name}; "
                "save the mask in the classes' order, or fix the colours in classes.yaml"
            )


def _check_label_range(labels: np.ndarray, file: Path | str, classes: ClassSpec) -> None:
    values = np.unique(labels)
    bad = [int(v) for v in values.tolist() if not (0 <= v < classes.num_classes) and v != classes.ignore_index]
    if bad:
        raise InputError(
            f"mask {file} has values {_format_values(bad)} but the classes define "
            f"0..{classes.num_classes - 1} (ignore {classes.ignore_index}); fix the mask or add the classes"
        )


def _format_values(values: Iterable[int]) -> str:
    listed = sorted(values)
    shown = ", ".join(str(v) for v in listed[:10])
    return "{" + shown + (f", ... ({len(listed)} values)" if len(listed) > 10 else "") + "}"


def _code(color: tuple[int, int, int]) -> int:
    return (color[0] << 16) | (color[1] << 8) | color[2]


def _color(code: int) -> tuple[int, int, int]:
    return ((code >> 16) & 255, (code >> 8) & 255, code & 255)
