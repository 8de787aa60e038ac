"""What a command's DATA argument names, turned into a dataset folder: the one registry of dataset sources.

A dataset is always read from a folder (``data.folder.SegmentationFolder``). ``DATASET_SOURCES`` says what
else a user may name instead, in order: an existing folder as it is, a built-in dataset's name (exported once
into the cache: ``data.builtin``). A new kind of source (a labelling tool's export read directly) is one
``DatasetSource`` and one line in the registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelwise.errors import PixelwiseError, did_you_mean


@dataclass(frozen=True)
class DatasetSource:
    """One way to name a dataset: ``accepts(text)`` says whether ``text`` is one (cheaply), ``resolve(text,
    options)`` gives its folder; ``names()`` lists the names it knows, for "did you mean"."""

    name: str
    accepts: Callable[[str], bool]
    resolve: Callable[[str, dict[str, Any]], Path]
    names: Callable[[], list[str]] = list


def _folder(text: str, options: dict[str, Any]) -> Path:
    if options:
        raise PixelwiseError(f"{text}: a dataset folder takes no --data-option ({', '.join(options)}); drop them")
    return Path(text)


def _builtin_names() -> list[str]:
    from pixelwise.data.builtin import BUILTINS

    return list(BUILTINS)


def _builtin(text: str, options: dict[str, Any]) -> Path:
    from pixelwise.data.builtin import cached_export

    return cached_export(text, **options)


FOLDER = DatasetSource("folder", accepts=lambda text: Path(text).is_dir(), resolve=_folder)
BUILTIN = DatasetSource(
    "built-in", accepts=lambda text: text in _builtin_names(), resolve=_builtin, names=_builtin_names
)
DATASET_SOURCES: list[DatasetSource] = [FOLDER, BUILTIN]


def dataset_root(name_or_path: str | os.PathLike[str], **options: Any) -> Path:
    """The folder of the dataset ``name_or_path`` names, through the first source that accepts it.

    ``options`` go to the source (a built-in dataset's generator options; ``None`` means the default).
    """
    text = str(name_or_path)
    for source in DATASET_SOURCES:
        if source.accepts(text):
            return source.resolve(text, {key: value for key, value in options.items() if value is not None})
    known = [name for source in DATASET_SOURCES for name in source.names()]
    raise PixelwiseError(
        f"{text!r} is neither a folder nor a built-in dataset{did_you_mean(text, known)}; give a dataset folder "
        f"or one of {', '.join(known)} (see `pixelwise datasets list`)"
    )
