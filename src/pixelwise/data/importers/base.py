"""The records between an importer and the writer, and what the formats of shapes share.

An importer reads an export cheaply and completely before anything is written: its structure, its classes,
every image's header, every annotation's geometry (point counts, run lengths). It returns an
``ImportedDataset`` whose images each carry a ``labels()`` function; the writer calls it image by image, so a
large export is rasterised one image at a time, and a bad file is refused before the first image is written.

Formats of shapes (COCO, CVAT XML, LabelMe) share three rules, defined here once:

- **Classes**: the export's label names in its order; the background is the label named ``--background``,
  else one named ``background`` (``_background_``, any case), else a new class ``background``; it is class 0.
- **Uncovered pixels** (no shape covers them) are the background, or the ignore label (255) with
  ``uncovered="ignore"`` (then no background class is made up; one the export names stays class 0).
- **Overlaps**: shapes are painted in order, a later one over an earlier one (``paint``).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec, Color, default_colors
from pixelwise.errors import PixelwiseError, did_you_mean

UNCOVERED = ("background", "ignore")
EMPTY_IMAGES = ("keep", "refuse")
OVERLAP_RULES = ("later", "smaller-on-top")
IGNORE_INDEX = 255
# label names that mean "the background" (LabelMe's _background_, any case) and "ignore this pixel" (LabelMe)
BACKGROUND_NAMES = frozenset({"background", "_background_", "__background__"})
IGNORE_NAMES = frozenset({"__ignore__"})


@dataclass(frozen=True)
class ImportOptions:
    """What a user may choose about an import; each importer names the fields it honours (``Importer.options``).

    ``images``: where the images are when the export does not hold them (or to use others);
    ``uncovered``: ``background`` | ``ignore``, the label of pixels no shape covers;
    ``empty_images``: ``keep`` (all background or ignore, with a note) | ``refuse`` an image without shapes;
    ``overlap_rule``: ``later`` (later shapes over earlier ones) | ``smaller-on-top`` (larger shapes first);
    ``background``: the label name that means the background, when it is not called ``background``.
    """

    images: Path | None = None
    uncovered: str = "background"
    empty_images: str = "keep"
    overlap_rule: str = "later"
    background: str | None = None

    def __post_init__(self) -> None:
        for name, choices in (
            ("uncovered", UNCOVERED),
            ("empty_images", EMPTY_IMAGES),
            ("overlap_rule", OVERLAP_RULES),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise PixelwiseError(
                    f"{option_flag(name)} {value!r}{did_you_mean(str(value), choices)} is not one of "
                    f"{', '.join(choices)}; pick one"
                )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(entry.name for entry in fields(cls))


def option_flag(name: str) -> str:
    """``overlap_rule`` -> ``--overlap-rule``: how the command line spells an option."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class ImageFile:
    """An image of the export, copied into the dataset as it is (never decoded and saved again).

    Either a ``path`` on disk or a ``read`` function that gives its bytes (a member of a zip, LabelMe's
    embedded ``imageData``); ``name`` says where it comes from in messages, ``suffix`` is the file's.
    """

    name: str
    suffix: str
    path: Path | None = None
    read: Callable[[], bytes] | None = None

    def size(self) -> tuple[int, int]:
        """(H, W) from the header, checking that pixelwise can read the file at all."""
        from pixelwise.data.io import IMAGE_SUFFIXES, image_size

        if self.suffix.lower() not in IMAGE_SUFFIXES:
            raise PixelwiseError(
                f"{self.name}: pixelwise reads {', '.join(sorted(IMAGE_SUFFIXES))} images; convert it (e.g. to PNG)"
            )
        if self.path is not None:
            return image_size(self.path)
        import io

        from pixelwise.data.decode import header_size

        return header_size(io.BytesIO(self.bytes()), self.name)

    def bytes(self) -> bytes:
        if self.read is not None:
            return self.read()
        if self.path is None:
            raise AssertionError(f"{self.name}: an ImageFile needs a path or a read function")
        return self.path.read_bytes()

    def copy_to(self, target: Path) -> None:
        if self.path is not None:
            shutil.copyfile(self.path, target)
        else:
            target.write_bytes(self.bytes())


@dataclass(frozen=True)
class ImportedImage:
    """One image of an import: ``stem`` names its files in the dataset, ``size`` is (H, W) and ``labels()``
    gives its (H, W) uint8 mask in the dataset's classes (0..K-1, or 255 = ignore), computed when called."""

    stem: str
    image: ImageFile
    size: tuple[int, int]
    labels: Callable[[], np.ndarray]


@dataclass(frozen=True)
class ImportedDataset:
    """What an importer read: the classes and the images, checked, not yet rasterised or written.

    ``close`` releases what the ``labels`` and image functions read from (an open zip); the writer calls it.
    """

    format: str
    source: Path
    classes: ClassSpec
    images: tuple[ImportedImage, ...]
    close: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class Importer:
    """A format: its ``name`` (the FORMAT argument), a one-line ``description``, what its ``source`` is, the
    ``ImportOptions`` fields it honours, and ``read(source, options) -> ImportedDataset``."""

    name: str
    description: str
    source: str
    options: tuple[str, ...]
    read: Callable[[Path, ImportOptions], ImportedDataset]


# --- shapes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """The pixels of one shape: a (h, w) bool ``mask`` whose first pixel is the image's (``top``, ``left``).

    A shape covers a small part of a large image; painting its bounding box alone, not a whole-image mask,
    is what keeps an import of many shapes per image fast."""

    mask: np.ndarray
    top: int = 0
    left: int = 0

    def region(self) -> tuple[slice, slice]:
        """The image's rows and columns the patch covers."""
        return slice(self.top, self.top + self.mask.shape[0]), slice(self.left, self.left + self.mask.shape[1])


@dataclass(frozen=True)
class Layer:
    """One shape as the painter sees it: the value it paints and its patch, drawn when called."""

    value: int
    patch: Callable[[], Patch]


def paint(size: tuple[int, int], fill: int, layers: Sequence[Layer], *, overlap_rule: str = "later") -> np.ndarray:
    """(H, W) uint8 labels: ``fill`` where no layer paints, each layer's value where it does.

    ``later``: the layers in their order, a later one over an earlier one (what LabelMe and CVAT draw).
    ``smaller-on-top``: the larger layers first (by pixel count; equal sizes in their order), so an object
    drawn inside a larger one stays visible whichever came first in the file.
    """
    labels = np.full(size, fill, dtype=np.uint8)
    patches = [(layer.value, layer.patch()) for layer in layers]
    if overlap_rule == "smaller-on-top":
        patches.sort(key=lambda pair: -int(np.count_nonzero(pair[1].mask)))  # stable: ties keep the file order
    for value, patch in patches:
        labels[patch.region()][patch.mask] = value
    return labels


@dataclass(frozen=True)
class ShapeClasses:
    """The classes of an import of shapes: ``spec``, the value each label name paints (a class index, or 255
    for LabelMe's ``__ignore__``) and ``fill``, the value of uncovered pixels."""

    spec: ClassSpec
    values: dict[str, int]
    fill: int


def shape_classes(
    names: Sequence[str], colors: Sequence[Color | None] | None, options: ImportOptions, *, source: str
) -> ShapeClasses:
    """The dataset's classes from an export's label ``names`` (in the export's order) and their ``colors``
    (None where the export has none), by the rules of the module docstring. Errors name ``source``."""
    given = list(colors) if colors is not None else [None] * len(names)
    painted = [(name, color) for name, color in zip(names, given, strict=True) if name not in IGNORE_NAMES]
    background = _background_name([name for name, _ in painted], options.background, source=source)
    ordered = sorted(painted, key=lambda pair: pair[0] != background)  # the background first, the rest in order
    if background is None and options.uncovered == "background":
        ordered.insert(0, ("background", (0, 0, 0)))
    if not ordered:
        raise PixelwiseError(
            f"{source}: no labels to make classes of; label some shapes, or keep --uncovered background"
        )
    if len(ordered) > IGNORE_INDEX:
        raise PixelwiseError(f"{source}: {len(ordered)} classes; pixelwise masks hold at most {IGNORE_INDEX}")
    spec = ClassSpec(tuple(name for name, _ in ordered), distinct_colors([color for _, color in ordered]))
    values = {name: index for index, name in enumerate(spec.names)}
    values.update({name: IGNORE_INDEX for name in names if name in IGNORE_NAMES})
    fill = 0 if options.uncovered == "background" else IGNORE_INDEX
    return ShapeClasses(spec, values, fill)


def _background_name(names: Sequence[str], chosen: str | None, *, source: str) -> str | None:
    if chosen is not None:
        if chosen not in names:
            raise PixelwiseError(
                f"--background {chosen!r}{did_you_mean(chosen, names)} is not a label of {source}; "
                f"its labels: {', '.join(names) or 'none'}"
            )
        return chosen
    return next((name for name in names if name.lower() in BACKGROUND_NAMES), None)


def distinct_colors(colors: Sequence[Color | None]) -> tuple[Color, ...]:
    """The given colours, and for each missing or repeated one the first VOC colour not yet taken (white, the
    ignore label's colour, never): two classes of one colour could not be told apart in a colour mask."""
    spare = iter(color for color in default_colors(len(colors) * 2 + 2) if color not in colors)
    chosen: list[Color] = []
    for color in colors:
        if color is None or color in chosen or color == (255, 255, 255):
            color = next(candidate for candidate in spare if candidate not in chosen)
        chosen.append(color)
    return tuple(chosen)


def check_empty(stems: Sequence[str], options: ImportOptions, *, source: str) -> None:
    """Images without any shape: a note (kept all ``uncovered``), or a refusal with ``empty_images="refuse"``."""
    if not stems:
        return
    shown = ", ".join(stems[:5]) + (f" and {len(stems) - 5} more" if len(stems) > 5 else "")
    if options.empty_images == "refuse":
        raise PixelwiseError(
            f"{source}: {len(stems)} image(s) without annotations ({shown}); label them, remove them from the "
            "export, or keep them as all background without --empty-images refuse"
        )
    warnings.warn(
        f"{source}: {len(stems)} image(s) without annotations ({shown}) are kept as all {options.uncovered}; "
        "--empty-images refuse refuses them",
        UserWarning,
        stacklevel=3,
    )


def note_skipped(skipped: dict[str, int], *, source: str, why: str) -> None:
    """One note for the shapes a format has but an import of areas cannot paint (lines, points ...)."""
    if skipped:
        counts = ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.items()))
        warnings.warn(f"{source}: skipped {counts}: {why}", UserWarning, stacklevel=3)


def unique_stems(named: Sequence[tuple[str, Any]], *, source: str) -> None:
    """Refuse two images whose files would get one name in the dataset (``a.png`` and ``sub/a.jpg``)."""
    seen: dict[str, Any] = {}
    for stem, where in named:
        if stem in seen:
            raise PixelwiseError(
                f"{source}: {seen[stem]} and {where} would both be {stem!r} in the dataset (images are paired with "
                "masks by file stem); rename one of them"
            )
        seen[stem] = where


def number(value: Any, what: str, *, source: str) -> float:
    """A finite number from an export (JSON or XML text), or one line naming ``what`` and ``source``."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise PixelwiseError(f"{source}: {what} {value!r} is not a number; fix the export") from None
    if isinstance(value, bool) or not np.isfinite(result):
        raise PixelwiseError(f"{source}: {what} {value!r} is not a finite number; fix the export")
    return result
