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

How the splits keep test pixels out of training:

- shapes: every image is drawn from its own random stream keyed by (seed, split, index).
- fashion: train scenes use items of the train file only, val scenes a held-out sixth of the train file
  (10,000 items never used in train scenes), test scenes the t10k file only. ``<split>/items.csv``
  records which item of which file lies where.
- nuclei: the image is cut into its four 256×256 quadrants; ``seed`` picks two for train, one for val and
  one for test, then each quadrant is cut into ``size``×``size`` tiles. No pixel is in two splits; a nucleus
  crossing a quadrant border is split between them.
- quokka: the photo is cut into horizontal bands, the top half train, the next quarter val, the bottom
  quarter test, so no pixel is in two splits; but it is one animal in one scene, so the scores say whether
  the pipeline works end to end, not how well a method generalises.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder import SegmentationFolder
from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_dir

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_ENV = "PIXELWISE_FASHION_MNIST"
CACHE_ENV = "PIXELWISE_CACHE"
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
METADATA_FILE = "pixelwise-dataset.json"
# bump when a generator changes its output, so that cached exports are made again
FORMAT_VERSION = 1
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class _Builtin:
    description: str
    defaults: dict[str, Any]
    write: Callable[[Path, dict[str, Any]], None]


# --- public API ----------------------------------------------------------------------------------------


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


def dataset_root(name_or_path: str | os.PathLike[str], **options: Any) -> Path:
    """An existing folder as it is; a built-in name exported once into the cache and its folder returned.

    The cache is ``$PIXELWISE_CACHE`` or ``~/.cache/pixelwise``; one folder per name and options.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name not in BUILTINS:
        raise PixelwiseError(
            f"{name!r} is neither a folder nor a built-in dataset; give a dataset folder or one of "
            f"{', '.join(BUILTINS)} (see `pixelwise datasets list`)"
        )
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
    return SegmentationFolder(dataset_root(name, **options), split)


def cache_dir() -> Path:
    """Where built-in datasets are exported: ``$PIXELWISE_CACHE`` or ``~/.cache/pixelwise``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "pixelwise"


def _entry(name: str) -> _Builtin:
    if name not in BUILTINS:
        raise PixelwiseError(f"no built-in dataset {name!r}; choose one of {', '.join(BUILTINS)}")
    return BUILTINS[name]


def _resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, unknown options refused, types checked; ``None`` means the default."""
    defaults = BUILTINS[name].defaults
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise PixelwiseError(f"dataset {name!r} has no option {', '.join(unknown)}; its options: {accepted}")
    resolved = dict(defaults)
    for key, value in options.items():
        if value is None:
            continue
        default = defaults[key]
        if isinstance(default, bool) or default is None:
            resolved[key] = value
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise PixelwiseError(f"dataset {name!r}: option {key} must be an integer, got {value!r}")
            resolved[key] = int(value)
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise PixelwiseError(f"dataset {name!r}: option {key} must be a number, got {value!r}")
            resolved[key] = float(value)
        else:
            resolved[key] = value
    if name == "fashion":
        # the files' folder is part of the data: a different folder must not reuse a cached export
        resolved["source"] = str(fashion_source(resolved["source"]).resolve())
    return resolved


def _split_counts(count: int) -> dict[str, int]:
    """Train ``count``; val and test a quarter of it each (at least one)."""
    if count < 1:
        raise PixelwiseError(f"count must be at least 1, got {count}")
    quarter = max(1, round(count / 4))
    return {"train": count, "val": quarter, "test": quarter}


# --- writing -------------------------------------------------------------------------------------------


def _save_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    # compression level 1: these folders are caches, written once and read many times; level 6 is 3x slower
    Image.fromarray(pixels).save(path, format="PNG", compress_level=1)


def _save_mask(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    from PIL import Image

    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(palette)
    image.save(path, format="PNG", compress_level=1)


def _split_dirs(root: Path) -> dict[str, tuple[Path, Path]]:
    dirs = {}
    for split in SPLIT_CODES:
        images, masks = root / split / "images", root / split / "masks"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        dirs[split] = (images, masks)
    return dirs


def _write_readme(root: Path, title: str, body: str, classes: ClassSpec, options: dict[str, Any]) -> None:
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


# --- shapes --------------------------------------------------------------------------------------------

SHAPES_CLASSES = ClassSpec.default(4, names=("background", "disc", "square", "triangle"))


def shapes_scene(rng: np.random.Generator, size: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """One procedural scene: 2–5 textured shapes of equal area on a smooth background, blurred, noisy.

    Returns image (size, size) uint8 and labels (size, size) uint8 (0 background, 1 disc, 2 square,
    3 triangle). Shapes of a scene have random grey levels and stripes, all of the same area per radius,
    so neither a threshold nor the size tells the classes apart: only the outline does.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.draw import disk, polygon

    field = gaussian_filter(rng.standard_normal((size, size)), sigma=size / 8)
    field /= field.std() + 1e-12
    image = rng.uniform(0.15, 0.45) + 0.08 * field
    labels = np.zeros((size, size), dtype=np.uint8)
    rows, cols = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(2, 6))):
        label = int(rng.integers(1, 4))
        radius = rng.uniform(0.08, 0.18) * size
        center_row, center_col = rng.uniform(radius, size - radius, 2)
        angle = rng.uniform(0, 2 * np.pi)
        if label == 1:
            inside = disk((center_row, center_col), radius, shape=(size, size))
        else:
            # the same area as the disc (pi r^2): circumradius of that square or equilateral triangle
            sides = 4 if label == 2 else 3
            area_to_circumradius2 = {4: np.pi / 2, 3: 4 * np.pi / (3 * np.sqrt(3))}[sides]
            circumradius = radius * np.sqrt(area_to_circumradius2)
            corners = angle + 2 * np.pi * np.arange(sides) / sides
            inside = polygon(
                center_row + circumradius * np.sin(corners),
                center_col + circumradius * np.cos(corners),
                shape=(size, size),
            )
        stripe_angle, frequency, phase = rng.uniform(0, np.pi), rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)
        stripes = np.sin(2 * np.pi * frequency * (rows * np.sin(stripe_angle) + cols * np.cos(stripe_angle)) + phase)
        image[inside] = rng.uniform(0.45, 0.9) + rng.uniform(0.0, 0.12) * stripes[inside]
        labels[inside] = label
    image = gaussian_filter(image, sigma=rng.uniform(0.5, 1.2))
    image += rng.normal(0.0, noise, image.shape)
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8), labels


def _write_shapes(root: Path, options: dict[str, Any]) -> None:
    size, seed, noise = options["size"], options["seed"], options["noise"]
    if size < 16:
        raise PixelwiseError(f"shapes: size must be at least 16 pixels, got {size}")
    if noise < 0:
        raise PixelwiseError(f"shapes: noise is a standard deviation and cannot be negative, got {noise}")
    palette = SHAPES_CLASSES.palette().ravel().tolist()
    for split, (images, masks) in _split_dirs(root).items():
        for index in range(_split_counts(options["count"])[split]):
            # one stream per image: an image does not change when the count or another split changes
            rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
            image, labels = shapes_scene(rng, size, noise)
            _save_png(images / f"{split}_{index:05d}.png", image)
            _save_mask(masks / f"{split}_{index:05d}.png", labels, palette)
    SHAPES_CLASSES.save(root / "classes.yaml")
    body = """
Procedural grey scenes: 2–5 discs, squares and triangles of equal area per size, with random grey levels
(0.45–0.9) and stripes, on a smooth background (0.15–0.45), blurred (sigma 0.5–1.2 px) and with Gaussian
noise of standard deviation `noise`. A threshold finds the shapes but cannot name them: the outline does.
Every image comes from its own random stream keyed by (seed, split, index).
"""
    _write_readme(root, "shapes (pixelwise built-in)", body, SHAPES_CLASSES, options)


# --- fashion -------------------------------------------------------------------------------------------

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


def _write_fashion(root: Path, options: dict[str, Any]) -> None:
    size, seed, source = options["size"], options["seed"], options["source"]
    if size < ITEM:
        raise PixelwiseError(f"fashion: size must be at least {ITEM} (one item), got {size}")
    counts = _split_counts(options["count"])
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
    for split, (images_dir, masks_dir) in _split_dirs(root).items():
        part, items, item_labels, pool = sources[split]
        rng = np.random.default_rng([seed, SPLIT_CODES[split]])
        images, labels, record = fashion_scenes(items, item_labels, pool, counts[split], size, rng)
        stems = [f"{split}_{index:05d}" for index in range(counts[split])]
        for stem, image, mask in zip(stems, images, labels, strict=True):
            _save_png(images_dir / f"{stem}.png", image)
            _save_mask(masks_dir / f"{stem}.png", mask, palette)
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
    _write_readme(root, "fashion (pixelwise built-in)", body, FASHION_CLASSES, options)


# --- nuclei --------------------------------------------------------------------------------------------

NUCLEI_CLASSES = ClassSpec(("background", "nucleus"), ((0, 0, 0), (255, 0, 0)))
QUADRANTS = {"top-left": (0, 0), "top-right": (0, 1), "bottom-left": (1, 0), "bottom-right": (1, 1)}


def nuclei_quadrants(seed: int) -> dict[str, list[str]]:
    """Which quadrants of the nuclei image form each split: two train, one val, one test, chosen by ``seed``."""
    order = [list(QUADRANTS)[index] for index in np.random.default_rng(seed).permutation(4)]
    return {"train": sorted(order[:2]), "val": [order[2]], "test": [order[3]]}


def _write_nuclei(root: Path, options: dict[str, Any]) -> None:
    import tifffile

    size, seed = options["size"], options["seed"]
    image = tifffile.imread(ASSETS / "nuclei" / "img2d.tif")
    # the instance mask numbers each nucleus; the task is nucleus versus background
    mask = (tifffile.imread(ASSETS / "nuclei" / "mask2d.tif") > 0).astype(np.uint8)
    half = image.shape[0] // 2
    if size < 16 or half % size:
        raise PixelwiseError(
            f"nuclei: size (tile side) must divide {half} and be at least 16, e.g. 64 or 128; got {size}"
        )
    palette = NUCLEI_CLASSES.palette().ravel().tolist()
    dirs = _split_dirs(root)
    for split, quadrants in nuclei_quadrants(seed).items():
        images_dir, masks_dir = dirs[split]
        for quadrant in quadrants:
            quadrant_row, quadrant_col = QUADRANTS[quadrant]
            for top in range(quadrant_row * half, (quadrant_row + 1) * half, size):
                for left in range(quadrant_col * half, (quadrant_col + 1) * half, size):
                    stem = f"{quadrant}_r{top:03d}_c{left:03d}"
                    # 16-bit TIFF as in the source: the real high-bit-depth path, not a rescaled PNG
                    tifffile.imwrite(images_dir / f"{stem}.tif", image[top : top + size, left : left + size])
                    _save_mask(masks_dir / f"{stem}.png", mask[top : top + size, left : left + size], palette)
    NUCLEI_CLASSES.save(root / "classes.yaml")
    shutil.copyfile(ASSETS / "nuclei" / "LICENSE.txt", root / "LICENSE.txt")
    shutil.copyfile(ASSETS / "nuclei" / "SOURCE.md", root / "SOURCE.md")
    layout = "; ".join(f"{split}: {', '.join(names)}" for split, names in nuclei_quadrants(seed).items())
    body = f"""
One real fluorescence microscopy image of cell nuclei (512×512, uint16; 2018 Data Science Bowl, BBBC038,
CC0; shipped in the stardist 0.9.2 wheel, BSD-3), binary: nucleus where the instance mask is above 0.
Split by quadrant so that no pixel is in two splits ({layout}), each quadrant cut into {size}×{size}
tiles. Images stay 16-bit TIFF; `read_image` scales each tile by its robust range. See SOURCE.md.
"""
    _write_readme(root, "nuclei (pixelwise built-in)", body, NUCLEI_CLASSES, options)


# --- quokka --------------------------------------------------------------------------------------------

QUOKKA_CLASSES = ClassSpec(("background", "quokka"), ((0, 0, 0), (255, 128, 0)))
# bands of the photo's height: top half train, next quarter val, bottom quarter test
QUOKKA_BANDS = {"train": (0.0, 0.5), "val": (0.5, 0.75), "test": (0.75, 1.0)}


def quokka_scene(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The quokka photo resized so its longer side is ``size``, and its filled polygon mask.

    Returns image (H, W, 3) uint8 and labels (H, W) uint8 (1 = quokka).
    """
    from PIL import Image
    from skimage.draw import polygon

    with Image.open(ASSETS / "quokka" / "quokka.jpg") as photo:
        width, height = photo.size
        scale = size / max(width, height)
        new_size = (round(width * scale), round(height * scale))
        image = np.asarray(photo.convert("RGB").resize(new_size, Image.Resampling.LANCZOS))
    annotations = json.loads((ASSETS / "quokka" / "quokka_annotations.json").read_text())
    points = annotations["polygons"][0]["keypoints"]
    # rasterise the polygon at the new size instead of resizing a mask: edges stay exact. Pixel centres
    # sit at +0.5 in both grids, hence the shift around the scaling
    rows = (np.array([point["y"] for point in points]) + 0.5) * (new_size[1] / height) - 0.5
    cols = (np.array([point["x"] for point in points]) + 0.5) * (new_size[0] / width) - 0.5
    labels = np.zeros(image.shape[:2], dtype=np.uint8)
    labels[polygon(rows, cols, shape=labels.shape)] = 1
    return image, labels


def _write_quokka(root: Path, options: dict[str, Any]) -> None:
    size = options["size"]
    if not 64 <= size <= 960:
        raise PixelwiseError(f"quokka: size (longer side) must be between 64 and 960 pixels, got {size}")
    image, labels = quokka_scene(size)
    height = image.shape[0]
    palette = QUOKKA_CLASSES.palette().ravel().tolist()
    for split, (images_dir, masks_dir) in _split_dirs(root).items():
        start, stop = (round(fraction * height) for fraction in QUOKKA_BANDS[split])
        _save_png(images_dir / f"quokka_{split}.png", image[start:stop])
        _save_mask(masks_dir / f"quokka_{split}.png", labels[start:stop], palette)
    QUOKKA_CLASSES.save(root / "classes.yaml")
    shutil.copyfile(ASSETS / "quokka" / "LICENSE.txt", root / "LICENSE.txt")
    shutil.copyfile(ASSETS / "quokka" / "SOURCE.md", root / "SOURCE.md")
    body = """
One real RGB photo of a quokka (shipped in the imgaug 0.4.0 wheel, MIT) with the animal's 39-point
polygon filled as the mask (about 30% foreground). The photo is cut into horizontal bands: the top half is
train, the next quarter val, the bottom quarter test, so no pixel is in two splits. It is still one animal
in one scene: a demo and an end-to-end test of the pipeline, not a benchmark. See SOURCE.md.
"""
    _write_readme(root, "quokka (pixelwise built-in)", body, QUOKKA_CLASSES, options)


BUILTINS: dict[str, _Builtin] = {
    "shapes": _Builtin(
        "procedural discs, squares and triangles with texture, blur and noise (4 classes, grey, instant)",
        {"size": 64, "count": 200, "seed": 0, "noise": 0.05},
        _write_shapes,
    ),
    "fashion": _Builtin(
        "Fashion-MNIST items placed on a canvas, 11 classes; test items from the t10k file only "
        "(needs `apt-get install dataset-fashion-mnist`)",
        {"size": 64, "count": 2000, "seed": 0, "source": None},
        _write_fashion,
    ),
    "nuclei": _Builtin(
        "real 512x512 16-bit fluorescence image of nuclei (BBBC038), binary, split by quadrant into tiles",
        {"size": 128, "seed": 0},
        _write_nuclei,
    ),
    "quokka": _Builtin(
        "one real RGB photo with a polygon mask, binary, split in bands: a demo, not a benchmark",
        {"size": 480},
        _write_quokka,
    ),
}
