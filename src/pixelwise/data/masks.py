"""What the values of a mask file mean: the encodings :func:`pixelwise.data.io.read_mask` understands.

Index masks (grey PNG or integer TIFF: the value is the label), palette PNGs (the palette *indices* are the
labels; the colours are for display, but a palette that gives a used index the colour of *another* class of
``classes`` is refused: such a mask was saved in another class order), RGB colour masks (each colour looked
up in ``classes.colors``; the ignore colour, white, maps to ``ignore_index``; an RGB mask of equal channels
is a grey index mask unless its greys are all colours of ``classes``, which then win), 1-bit masks (0 and 1).

Binary masks stored as 0/255 become {0, 1} with a notice: read as they are, 255 would be the ignore label and
the foreground would silently vanish from loss and metrics (the MMSegmentation ``reduce_zero_label`` trap).
The guess is made only for a grey mask of only 0 and 255 with two classes, and never where 255 is known to be
the ignore label:

- declared in ``classes.yaml`` (``ClassSpec.ignore_declared``): the mask is background and ignore, said in
  one notice per folder, since a user whose 255 is the foreground must learn it before training on nothing;
- shown by another mask of the same folder that holds 255 beside label 1: the folder contradicts itself and
  is refused (``conflicting_masks``), whichever of the two masks is read first. One reading of 255 per
  folder, never two. ``data.folder.infer_classes`` sees every mask at once and refuses such a folder before
  any work; a folder read mask by mask (a ``classes.yaml`` without ``ignore_index``) is refused at the mask
  that contradicts an earlier one (this process remembers each folder's reading).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import InputError, PixelwiseError

# how each folder's 0/255 masks were read (255 as the foreground: True; as ignore: False), the first mask
# that showed it and its modification time: one notice per folder, not one per file, and one reading per folder
_read_255: dict[Path, tuple[bool, Path, int | None]] = {}
# folders told that their 0/255 masks are background + the declared ignore label
_declared_noticed: set[Path] = set()


class StoredLabels(NamedTuple):
    """What a mask stores, read literally (no 0/255 guess): its distinct values, whether it is a grey or index
    mask of only 0 and 255 (which ``read_mask`` may take for a binary mask) and whether it holds 255 beside a
    label other than 0 (255 is then the ignore label)."""

    values: np.ndarray
    zero_255: bool
    ignore_beside_labels: bool


def decode_mask(
    raw: np.ndarray, file: Path, classes: ClassSpec | None, *, is_palette: bool
) -> tuple[np.ndarray, StoredLabels | None]:
    """The labels a mask stores (no 0/255 guess yet), and for a grey or index mask, what it stores (where
    the guess may apply); None for palette, 1-bit and colour masks."""
    if raw.ndim == 3:
        if raw.shape[2] == 1:
            raw = raw[:, :, 0]
        elif raw.shape[2] == 3:
            rgb = raw
            # a grey mask saved as RGB has equal channels: its values are the labels, unless every grey in it
            # is a colour of the classes (classes.yaml giving white to a class): then the colours are
            equal = np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])
            if not equal or _only_class_greys(rgb[:, :, 0], classes):
                return _colors_to_labels(rgb, file, classes), None
            raw = rgb[:, :, 0]
        else:
            raise InputError(f"mask {file} has {raw.shape[2]} channels; give an index or RGB mask")
    if raw.dtype == np.bool_:
        return raw.astype(np.uint8), None
    integral = np.issubdtype(raw.dtype, np.integer)
    if not integral and not (np.all(np.isfinite(raw)) and np.array_equal(raw, np.round(raw))):
        raise InputError(
            f"mask {file} has fractional values ({raw.dtype}); masks hold integer labels, save them as such"
        )
    values = np.unique(raw)
    if values.size and (values[0] < 0 or values[-1] > 255):
        shown = format_values(v for v in values.tolist() if v < 0 or v > 255)
        raise InputError(f"mask {file} has values {shown} outside 0..255; labels must fit in 0..255 (255 = ignore)")
    labels = raw.astype(np.uint8)
    if is_palette:  # in a palette PNG index 255 is deliberate (VOC: ignore)
        return labels, None
    zero_255 = values.size > 0 and set(values.tolist()) <= {0, 255} and int(values[-1]) == 255
    return labels, StoredLabels(values, zero_255, ignore_beside_labels(values))


def ignore_beside_labels(values: np.ndarray) -> bool:
    return bool(np.any(values == 255) and np.any((values > 0) & (values < 255)))


def _only_class_greys(grey: np.ndarray, classes: ClassSpec | None) -> bool:
    if classes is None:
        return False
    greys = {color[0] for color in classes.colors if color[0] == color[1] == color[2]}
    return set(np.unique(grey).tolist()) <= greys


def read_0_255(labels: np.ndarray, stored: StoredLabels, file: Path, classes: ClassSpec | None) -> np.ndarray:
    """A grey mask's labels after the 0/255 guess: a mask of only 0 and 255, with two classes and 255 as the
    ignore label, is a binary mask (255 -> 1), unless the ignore label is declared, or another mask of the
    folder uses 255 as ignore beside label 1 (then the folder contradicts itself: refused)."""
    two_classes = classes is None or (classes.num_classes == 2 and classes.ignore_index == 255)
    if not two_classes or not (stored.zero_255 or stored.ignore_beside_labels):
        return labels
    folder = file.parent.resolve()
    if classes is not None and classes.ignore_declared:
        if stored.zero_255 and folder not in _declared_noticed:
            _declared_noticed.add(folder)
            _warn(
                f"mask {file} holds only 0 and 255: read as background and the ignore label that classes.yaml "
                f"declares (ignore_index: 255), not as a 0/255 binary mask; every such mask of {file.parent} is "
                "read so. If 255 is your foreground, save the masks as 0/1"
            )
        return labels
    as_foreground = stored.zero_255
    earlier = _read_255.get(folder)
    if earlier is not None and _modified(earlier[1]) != earlier[2]:
        earlier = None  # the mask that set the folder's reading changed since (a long session): ask afresh
    if earlier is None:
        _read_255[folder] = (as_foreground, file, _modified(file))
        if as_foreground:
            _warn(
                f"mask {file} stores a binary mask as 0/255: 255 read as class 1 (foreground), not as the ignore "
                f"label; every 0/255 mask of {file.parent} is read so. Save masks as 0/1 to silence this notice, "
                "or declare ignore_index: 255 in classes.yaml to read 255 as ignore"
            )
    elif earlier[0] != as_foreground:
        binary, other = (file, earlier[1]) if as_foreground else (earlier[1], file)
        raise conflicting_masks(binary, other)
    return (labels == 255).astype(np.uint8) if as_foreground else labels


def _modified(file: Path) -> int | None:
    try:
        return file.stat().st_mtime_ns
    except OSError:
        return None


def conflicting_masks(binary: Path, other: Path) -> PixelwiseError:
    """The one line for a folder whose masks use 255 in two ways (foreground of a 0/255 mask, ignore)."""
    return PixelwiseError(
        f"masks use 255 in two ways: {binary} holds only 0 and 255 (a 0/255 binary mask, 255 = foreground) but "
        f"{other} holds 255 beside label 1 (255 = ignore); declare ignore_index: 255 in classes.yaml to read 255 as "
        "ignore in every mask, or save the binary masks as 0/1"
    )


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


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


def check_palette(labels: np.ndarray, palette: np.ndarray, file: Path, classes: ClassSpec) -> None:
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


def check_label_range(labels: np.ndarray, file: Path | str, classes: ClassSpec) -> None:
    values = np.unique(labels)
    bad = [int(v) for v in values.tolist() if not (0 <= v < classes.num_classes) and v != classes.ignore_index]
    if bad:
        raise InputError(
            f"mask {file} has values {format_values(bad)} but the classes define "
            f"0..{classes.num_classes - 1} (ignore {classes.ignore_index}); fix the mask or add the classes"
        )


def format_values(values: Iterable[int]) -> str:
    listed = sorted(values)
    shown = ", ".join(str(v) for v in listed[:10])
    return "{" + shown + (f", ... ({len(listed)} values)" if len(listed) > 10 else "") + "}"


def _code(color: tuple[int, int, int]) -> int:
    return (color[0] << 16) | (color[1] << 8) | color[2]


def _color(code: int) -> tuple[int, int, int]:
    return ((code >> 16) & 255, (code >> 8) & 255, code & 255)
