"""Built-in datasets that need no download: exported once as ordinary dataset folders, then read like any.

=========  ==========================================================================================
shapes     procedural grey scenes of discs, squares and triangles on a textured background (4 classes)
fashion    Fashion-MNIST items placed on a canvas (11 classes); the images come from Debian's package
nuclei     one real 512×512 16-bit fluorescence image of nuclei with its mask (2 classes), in quadrants
quokka     one real RGB photo with a polygon around the animal (2 classes): a demo, not a benchmark
=========  ==========================================================================================

Every export has ``train/ val/ test/`` each with ``images/`` + ``masks/`` (palette PNG), ``classes.yaml``,
a ``README.md`` saying how it was made, the data's licence where it has one, and ``pixelwise-dataset.json``
(name and options). Each is deterministic: the same name and options give the same files.

Each dataset is one module (``shapes``, ``fashion``, ``nuclei``, ``quokka``): how it is made and how its
splits keep test pixels out of training are in its docstring. ``registry`` lists them and turns a name into a
folder (``cached_export``; any command's DATA argument goes through ``data.datasets.dataset_root``); ``base`` holds what they share. A new built-in dataset is one new module and its
line in ``registry.BUILTINS``.
"""

from __future__ import annotations

from pixelwise.data.builtin.base import Builtin
from pixelwise.data.builtin.registry import (
    BUILTINS,
    CACHE_ENV,
    FORMAT_VERSION,
    METADATA_FILE,
    cache_dir,
    cached_export,
    export_builtin,
    list_builtin,
    load_builtin,
)

__all__ = [
    "BUILTINS",
    "CACHE_ENV",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "Builtin",
    "cache_dir",
    "cached_export",
    "export_builtin",
    "list_builtin",
    "load_builtin",
]
