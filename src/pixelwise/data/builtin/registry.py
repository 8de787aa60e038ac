"""The built-in datasets by name, and how one becomes a folder: exported once into the cache, then read like any.

A new built-in dataset is one module beside this one (its ``write`` and a ``DATASET = Builtin(...)``) and
its line in ``BUILTINS``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pixelwise.data.builtin import fashion, nuclei, quokka, shapes
from pixelwise.data.builtin.base import Builtin
from pixelwise.data.folder import SegmentationFolder
from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.files import atomic_dir
from pixelwise.settings import convert, no_such_option

BUILTINS: dict[str, Builtin] = {
    dataset.name: dataset for dataset in (shapes.DATASET, fashion.DATASET, nuclei.DATASET, quokka.DATASET)
}
CACHE_ENV = "PIXELWISE_CACHE"
METADATA_FILE = "pixelwise-dataset.json"
# bump when a generator changes its output, so that cached exports are made again
FORMAT_VERSION = 2  # 2: nuclei has instances/


def list_builtin() -> dict[str, str]:
    """Names of the built-in datasets and a one-line description of each."""
    return {name: entry.description for name, entry in BUILTINS.items()}


def export_builtin(name: str, out_dir: str | os.PathLike[str], **options: Any) -> Path:
    """Write the built-in dataset ``name`` as a dataset folder at ``out_dir`` (replacing it atomically).

    Options (``None`` means the default): shapes ``size, count, seed, noise``; fashion
    ``size, count, seed, source``; nuclei ``size, seed``; quokka ``size``. Returns the folder.
    """
    entry = _entry(name)
    resolved = _resolve_options(name, options)
    target = Path(out_dir)
    with atomic_dir(target) as tmp:
        entry.write(tmp, resolved)
        metadata = {"name": name, "options": resolved, "format": FORMAT_VERSION}
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return target


def cached_export(name: str, **options: Any) -> Path:
    """The folder of the built-in dataset ``name`` with ``options``, exported once into the cache
    (``$PIXELWISE_CACHE`` or ``~/.cache/pixelwise``; one folder per name and options)."""
    resolved = _resolve_options(name, options)
    key = json.dumps({"options": resolved, "format": FORMAT_VERSION}, sort_keys=True)
    folder = cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if not (folder / METADATA_FILE).is_file():
        try:
            export_builtin(name, folder, **resolved)
        except OSError as error:
            raise PixelwiseError(
                f"cannot write the dataset cache {folder} ({error.strerror or error}); "
                f"set {CACHE_ENV} to a writable folder"
            ) from error
    return folder


def load_builtin(name: str, split: str = "train", **options: Any) -> SegmentationFolder:
    """The ``split`` of a built-in dataset (exported into the cache on first use)."""
    return SegmentationFolder(cached_export(name, **options), split)


def cache_dir() -> Path:
    """Where built-in datasets are exported: ``$PIXELWISE_CACHE`` or ``~/.cache/pixelwise``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "pixelwise"


def _entry(name: str) -> Builtin:
    if name not in BUILTINS:
        raise PixelwiseError(
            f"no built-in dataset {name!r}{did_you_mean(name, BUILTINS)}; choose one of {', '.join(BUILTINS)}"
        )
    return BUILTINS[name]


def _resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, unknown options refused, types checked (an option's type is its default's; values
    arrive typed, from keyword arguments or parsed ``--data-option``s); ``None`` means the default."""
    defaults = BUILTINS[name].defaults
    unknown = set(options) - set(defaults)
    if unknown:
        raise no_such_option(f"dataset {name!r}", unknown, list(defaults), quoted=False)
    resolved = dict(defaults)
    for key, value in options.items():
        if value is not None:  # an option without a default (a path) has no type to hold it to
            default = defaults[key]
            typed = default is not None
            resolved[key] = (
                convert(value, type(default), name=f"option {key}", source=f"dataset {name!r}", text=False)
                if typed
                else value
            )
    resolve = BUILTINS[name].resolve
    return resolve(resolved) if resolve is not None else resolved
