"""``fashion``: Fashion-MNIST items placed on a canvas (11 classes), from Debian's ``dataset-fashion-mnist``.

Train scenes use items of the train file only, val scenes a held-out sixth of the train file (10,000 items
never used in train scenes), test scenes the t10k file only. ``<split>/items.csv`` records which item of
which file lies where.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.builtin.base import (
    SPLIT_CODES,
    Builtin,
    save_mask,
    save_png,
    split_counts,
    split_dirs,
    write_readme,
)
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_ENV = "PIXELWISE_FASHION_MNIST"
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

FASHION_CLASSES = ClassSpec.default(11, names=("background", *FASHION_NAMES))
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ITEM = 28  # Fashion-MNIST items are 28×28
# train-file items held out for val scenes: the last sixth of a seeded permutation (10,000 of 60,000), the
# same size as the t10k file that test scenes use
FASHION_VAL_SHARE = 6
FASHION_LICENSE = """The MIT License (MIT)

Copyright © [2017] Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the “Software”), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software.

THE SOFTWARE IS PROVIDED “AS IS”, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE
USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def fashion_source(source: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the four Fashion-MNIST files: ``source``, else ``$PIXELWISE_FASHION_MNIST``, else Debian's.

    Files may be gzipped (``.gz``, as Debian ships them) or not.
    """
    folder = Path(source) if source else Path(os.environ.get(FASHION_ENV) or FASHION_DIR)
    missing = [name for pair in FASHION_FILES.values() for name in pair if _idx_file(folder, name) is None]
    if missing:
        raise PixelwiseError(
            f"Fashion-MNIST files not found in {folder} (missing {', '.join(f + '.gz' for f in missing)}); "
            f"install them with `sudo apt-get install dataset-fashion-mnist`, or set {FASHION_ENV} "
            "(or the source option) to a folder holding the four idx files"
        )
    return folder


def _idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, *, magic: int) -> np.ndarray:
    """An idx file (the MNIST format: big-endian header, then uint8 data) as an array."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise PixelwiseError(f"{path}: cannot read ({error}); reinstall dataset-fashion-mnist") from error
    dimensions = magic & 0xFF
    header = 4 + 4 * dimensions
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise PixelwiseError(f"{path}: not an idx file of the expected kind; reinstall dataset-fashion-mnist")
    shape = tuple(int.from_bytes(raw[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(dimensions))
    if len(raw) - header != int(np.prod(shape)):
        raise PixelwiseError(f"{path}: truncated ({len(raw) - header} of {int(np.prod(shape))} bytes)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@lru_cache(maxsize=2)
def load_fashion(source: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Items (N, 28, 28) uint8 and labels (N,) uint8 of the ``part`` "train" or "t10k" file."""
    folder = fashion_source(source)
    image_name, label_name = FASHION_FILES[part]
    images = _read_idx(_idx_file(folder, image_name) or folder / image_name, magic=0x0803)
    labels = _read_idx(_idx_file(folder, label_name) or folder / label_name, magic=0x0801)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (ITEM, ITEM):
        raise PixelwiseError(f"{folder}: {part} images {images.shape} do not match labels {labels.shape}")
    return images, labels


def fashion_scenes(
    items: np.ndarray, item_labels: np.ndarray, pool: np.ndarray, count: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``count`` scenes of 1–4 items drawn from ``items[pool]``, painted in order on a black canvas.

    Returns images (count, size, size) uint8, labels (count, size, size) uint8 (item pixels > 0 take the
    item's class + 1, the rest 0; a later item covers an earlier one where its pixels are > 0) and a record
    {scene, slot, index, label, row, col} of every placed item (``index`` into ``items``).
    """
    per_scene = rng.integers(1, 5, count)
    total = int(per_scene.sum())
    # each item used once while the pool lasts
    chosen = rng.choice(pool, size=total, replace=total > len(pool))
    scene = np.repeat(np.arange(count), per_scene)
    slot = np.arange(total) - np.repeat(np.cumsum(per_scene) - per_scene, per_scene)
    top = rng.integers(0, size - ITEM + 1, total)
    left = rng.integers(0, size - ITEM + 1, total)
    images = np.zeros((count, size, size), dtype=np.uint8)
    labels = np.zeros((count, size, size), dtype=np.uint8)
    offsets = np.arange(ITEM)
    # slot by slot, so that within one step no two items share a scene and paint order is slot order
    for current in range(4):
        placed = np.flatnonzero(slot == current)
        pixels = items[chosen[placed]]
        on = pixels > 0
        scene_index = np.broadcast_to(scene[placed][:, None, None], on.shape)[on]
        row_index = np.broadcast_to(top[placed][:, None, None] + offsets[None, :, None], on.shape)[on]
        col_index = np.broadcast_to(left[placed][:, None, None] + offsets[None, None, :], on.shape)[on]
        images[scene_index, row_index, col_index] = pixels[on]
        item_class = np.broadcast_to(item_labels[chosen[placed]][:, None, None] + 1, on.shape)[on]
        labels[scene_index, row_index, col_index] = item_class
    record = {
        "scene": scene,
        "slot": slot,
        "index": chosen,
        "label": item_labels[chosen],
        "row": top,
        "col": left,
    }
    return images, labels, record


def write(root: Path, options: dict[str, Any]) -> None:
    size, seed, source = options["size"], options["seed"], options["source"]
    if size < ITEM:
        raise PixelwiseError(f"fashion: size must be at least {ITEM} (one item), got {size}")
    counts = split_counts(options["count"])
    train_items, train_labels = load_fashion(source, "train")
    test_items, test_labels = load_fashion(source, "t10k")
    if len(train_items) < FASHION_VAL_SHARE or len(test_items) < 1:
        raise PixelwiseError(
            f"{source}: too few Fashion-MNIST items ({len(train_items)} train, {len(test_items)} t10k)"
        )
    permuted = np.random.default_rng([seed, 99]).permutation(len(train_items))
    val_start = len(train_items) - len(train_items) // FASHION_VAL_SHARE
    sources = {
        "train": ("train", train_items, train_labels, np.sort(permuted[:val_start])),
        "val": ("train", train_items, train_labels, np.sort(permuted[val_start:])),
        "test": ("t10k", test_items, test_labels, np.arange(len(test_items))),
    }
    palette = FASHION_CLASSES.palette().ravel().tolist()
    for split, (images_dir, masks_dir) in split_dirs(root).items():
        part, items, item_labels, pool = sources[split]
        rng = np.random.default_rng([seed, SPLIT_CODES[split]])
        images, labels, record = fashion_scenes(items, item_labels, pool, counts[split], size, rng)
        stems = [f"{split}_{index:05d}" for index in range(counts[split])]
        for stem, image, mask in zip(stems, images, labels, strict=True):
            save_png(images_dir / f"{stem}.png", image)
            save_mask(masks_dir / f"{stem}.png", mask, palette)
        rows = ["stem,slot,file,index,label,row,col"]
        for position in range(len(record["scene"])):
            rows.append(
                f"{stems[record['scene'][position]]},{record['slot'][position]},{part},{record['index'][position]},"
                f"{record['label'][position]},{record['row'][position]},{record['col'][position]}"
            )
        (root / split / "items.csv").write_text("\n".join(rows) + "\n")
    FASHION_CLASSES.save(root / "classes.yaml")
    (root / "LICENSE.txt").write_text(FASHION_LICENSE)
    body = f"""
Scenes of 1–4 Fashion-MNIST items (28×28, Zalando Research) placed at random on a black {size}×{size}
canvas; overlaps are resolved by paint order. Each item pixel above 0 takes the item's class + 1, the rest
is background. Train scenes use items of the train file only, val scenes 10,000 items of the train file
held out from train scenes, test scenes the t10k file only. `<split>/items.csv` lists every placed item:
file, index in it, class, top-left corner. Source files: {source}.
"""
    write_readme(root, "fashion (pixelwise built-in)", body, FASHION_CLASSES, options)


def resolve(options: dict[str, Any]) -> dict[str, Any]:
    """The files' folder is part of the data: a different folder must not reuse a cached export."""
    return {**options, "source": str(fashion_source(options["source"]).resolve())}


DATASET = Builtin(
    name="fashion",
    description="Fashion-MNIST items placed on a canvas, 11 classes; test items from the t10k file only "
    "(needs `apt-get install dataset-fashion-mnist`)",
    defaults={"size": 64, "count": 2000, "seed": 0, "source": None},
    option_help={
        "size": "image side",
        "count": "training images (val and test: a quarter as many)",
        "seed": "random seed",
        "source": "folder of the four Fashion-MNIST idx files",
    },
    write=write,
    resolve=resolve,
)
