"""ClassSpec: the classes of a dataset, their colours and the label that means "ignore this pixel"."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pixelwise.errors import PixelwiseError

Color = tuple[int, int, int]
# the keys of classes.yaml, and of one entry of its 'classes' list
FILE_KEYS = ("classes", "names", "colors", "ignore_index")
ENTRY_KEYS = ("name", "color")


def default_colors(num_classes: int) -> tuple[Color, ...]:
    """The PASCAL VOC colour map: class 0 black, then well separated colours.

    >>> default_colors(3)
    ((0, 0, 0), (128, 0, 0), (0, 128, 0))
    """
    colors = []
    for index in range(num_classes):
        red = green = blue = 0
        code = index
        # the bits of the class index are spread over the high bits of the three channels
        for shift in range(7, -1, -1):
            red |= ((code >> 0) & 1) << shift
            green |= ((code >> 1) & 1) << shift
            blue |= ((code >> 2) & 1) << shift
            code >>= 3
        colors.append((red, green, blue))
    return tuple(colors)


# the label of pixels that belong to no class (VOC's void): every default of pixelwise takes it from here
IGNORE_INDEX = 255


@dataclass(frozen=True)
class ClassSpec:
    """Names and colours of the classes 0..K-1, and ``ignore_index`` (pixels left out of loss and metrics).

    ``ignore_declared``: the user's ``classes.yaml`` says ``ignore_index`` (not only the default), so 255 in a
    mask is that label and never the foreground of a 0/255 binary mask (``data.masks``). It is no part of the
    classes' identity (equality, ``to_dict``).

    >>> spec = ClassSpec.default(2)
    >>> spec.names, spec.num_classes, spec.ignore_index
    (('class0', 'class1'), 2, 255)
    """

    names: tuple[str, ...]
    colors: tuple[Color, ...]
    ignore_index: int = IGNORE_INDEX
    ignore_declared: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.names) < 1:
            raise PixelwiseError("a class list needs at least one class")
        if len(self.colors) != len(self.names):
            raise PixelwiseError(
                f"{len(self.names)} class names but {len(self.colors)} colours; give one colour per class"
            )
        repeated = [name for index, name in enumerate(self.names) if name in self.names[:index]]
        if repeated:
            raise PixelwiseError(f"class name {repeated[0]!r} is given twice; give each class its own name")
        for index, color in enumerate(self.colors):
            if color in self.colors[:index]:
                first = self.names[self.colors.index(color)]
                raise PixelwiseError(
                    f"classes {first!r} and {self.names[index]!r} have the same colour {list(color)}; colour masks "
                    "and pictures could not tell them apart, give each class its own colour"
                )
        if 0 <= self.ignore_index < len(self.names):
            raise PixelwiseError(
                f"ignore_index {self.ignore_index} is also a class (0..{len(self.names) - 1}); use e.g. 255"
            )

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @classmethod
    def default(
        cls, num_classes: int, *, names: Sequence[str] | None = None, ignore_index: int = IGNORE_INDEX
    ) -> ClassSpec:
        """Classes named ``class0``, ``class1``, ... (or ``names``) with the VOC colours."""
        chosen = tuple(names) if names is not None else tuple(f"class{index}" for index in range(num_classes))
        return cls(chosen, default_colors(len(chosen)), ignore_index)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClassSpec:
        """Read ``classes.yaml``.

        Either a list of classes, each a name or ``{name, color}``::

            classes:
              - background
              - {name: nucleus, color: [255, 0, 0]}
            ignore_index: 255

        or parallel lists ``names:`` and ``colors:``. Any other key, a colour that is no colour, two classes
        of one name or one colour: a PixelwiseError naming the file (and the line, for YAML errors).
        """
        file = Path(path)
        if file.exists() and not file.is_file():  # a folder, a pipe (reading it would block), a device
            raise PixelwiseError(f"{file}: not a regular file; give the path of a classes.yaml")
        try:
            raw = yaml.safe_load(file.read_text())
        except FileNotFoundError:
            raise PixelwiseError(f"{file}: no such file; give the path of a classes.yaml") from None
        except UnicodeDecodeError:
            raise PixelwiseError(f"{file}: not a text file; give a classes.yaml") from None
        except yaml.YAMLError as error:
            raise PixelwiseError(f"{file}: not valid YAML{_yaml_position(error)}; fix the file") from None
        if not isinstance(raw, dict):
            raise PixelwiseError(f"{file}: expected a mapping with 'classes:' (or 'names:'); see the README")
        return replace(cls.from_dict(raw, source=str(file)), ignore_declared="ignore_index" in raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "classes") -> ClassSpec:
        """The classes of a ``classes.yaml`` mapping (or ``to_dict()``); errors name ``source``."""
        _check_keys(raw, FILE_KEYS, source, "")
        ignore_index = raw.get("ignore_index", 255)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise PixelwiseError(f"{source}: ignore_index {ignore_index!r} is not a whole number; use e.g. 255")
        names: list[str] = []
        colors: list[Color | None] = []
        if "classes" in raw:
            entries = raw["classes"]
            if not isinstance(entries, list) or not entries:
                raise PixelwiseError(f"{source}: 'classes' must be a non-empty list of names or {{name, color}}")
            for entry in entries:
                if isinstance(entry, dict):
                    _check_keys(entry, ENTRY_KEYS, source, f"class {entry.get('name', entry)}: ")
                    if "name" not in entry:
                        raise PixelwiseError(f"{source}: class entry {entry} has no 'name'; add one")
                    names.append(str(entry["name"]))
                    colors.append(_color(entry.get("color"), source) if entry.get("color") is not None else None)
                else:
                    names.append(str(entry))
                    colors.append(None)
        elif "names" in raw:
            if not isinstance(raw["names"], list):
                raise PixelwiseError(f"{source}: 'names' must be a list of class names")
            names = [str(name) for name in raw["names"]]
            given = raw.get("colors") or [None] * len(names)
            if not isinstance(given, list) or len(given) != len(names):
                raise PixelwiseError(f"{source}: {len(names)} names but {len(given)} colors; give one colour per class")
            colors = [_color(color, source) if color is not None else None for color in given]
        else:
            raise PixelwiseError(f"{source}: expected 'classes:' or 'names:'; see the README for the format")
        fallback = default_colors(len(names))
        filled = tuple(color if color is not None else fallback[index] for index, color in enumerate(colors))
        try:
            return cls(tuple(names), filled, ignore_index)
        except PixelwiseError as error:
            raise PixelwiseError(f"{source}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": [
                {"name": name, "color": list(color)} for name, color in zip(self.names, self.colors, strict=True)
            ],
            "ignore_index": self.ignore_index,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        from pixelwise.files import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 colour table for palette PNGs; ``ignore_index`` is white, unused entries black."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        if 0 <= self.ignore_index < 256:
            table[self.ignore_index] = 255
        return table

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) integer labels -> (H, W, 3) uint8 colours."""
        return self.palette()[np.clip(labels, 0, 255).astype(np.intp)]


def _color(value: Any, source: str) -> Color:
    if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
    if (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise PixelwiseError(f"{source}: colour {value!r} is not [r, g, b] with 0..255 or '#rrggbb'; fix it")


def _check_keys(raw: dict[str, Any], known: tuple[str, ...], source: str, where: str) -> None:
    """Refuse keys the format does not have, with the nearest known one: a misspelt key would be ignored."""
    for key in raw:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {near[0]!r}?" if near else f"the keys are {', '.join(known)}"
            raise PixelwiseError(f"{source}: {where}unknown key {key!r}; {hint}")


def _yaml_position(error: yaml.YAMLError) -> str:
    """`` at line 4, column 3: expected ',' or '}', but got '-'`` from a YAML error, or ``""``."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return where + (f": {' '.join(str(problem).split())}" if problem else "")
