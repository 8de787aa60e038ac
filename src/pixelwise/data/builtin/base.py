"""What every built-in dataset shares: its registry entry (``Builtin``) and the writers of a dataset folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class Builtin:
    """A built-in dataset: ``write(folder, options)`` fills an empty folder with ``train/ val/ test/``.

    ``defaults`` are its options (anything else is refused; the type of each default is the option's
    type), ``option_help`` says in a few words what each means for this dataset (the command line's help
    is made from it); ``resolve``, when given, turns the options into their final form before they key the
    cache.
    """

    name: str
    description: str
    defaults: dict[str, Any]
    option_help: dict[str, str]
    write: Callable[[Path, dict[str, Any]], None]
    resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.option_help.keys() != self.defaults.keys():
            raise ValueError(f"built-in {self.name!r}: option_help must describe exactly the options of defaults")


def split_counts(count: int) -> dict[str, int]:
    """Train ``count``; val and test a quarter of it each (at least one)."""
    if count < 1:
        raise PixelwiseError(f"count must be at least 1, got {count}")
    quarter = max(1, round(count / 4))
    return {"train": count, "val": quarter, "test": quarter}


def save_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    # compression level 1: these folders are caches, written once and read many times; level 6 is 3x slower
    Image.fromarray(pixels).save(path, format="PNG", compress_level=1)


def save_mask(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    from PIL import Image

    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(palette)
    image.save(path, format="PNG", compress_level=1)


def split_dirs(root: Path) -> dict[str, tuple[Path, Path]]:
    dirs = {}
    for split in SPLIT_CODES:
        images, masks = root / split / "images", root / split / "masks"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        dirs[split] = (images, masks)
    return dirs


def write_readme(root: Path, title: str, body: str, classes: ClassSpec, options: dict[str, Any]) -> None:
    counts = {split: len(list((root / split / "images").iterdir())) for split in SPLIT_CODES}
    lines = [
        f"# {title}",
        "",
        body.strip(),
        "",
        "Classes: " + ", ".join(f"{index} {name}" for index, name in enumerate(classes.names)) + ".",
        "Images per split: " + ", ".join(f"{split} {count}" for split, count in counts.items()) + ".",
        "Options: " + ", ".join(f"{key}={value}" for key, value in options.items()) + ".",
        "",
        "Written by `pixelwise.data.builtin`; the same options always give the same files.",
        "",
    ]
    (root / "README.md").write_text("\n".join(lines))
