"""``quokka``: one real RGB photo with a polygon around the animal (2 classes): a demo, not a benchmark.

The photo is cut into horizontal bands, the top half train, the next quarter val, the bottom quarter test,
so no pixel is in two splits; but it is one animal in one scene, so the scores say whether the pipeline
works end to end, not how well a method generalises.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.builtin.base import ASSETS, Builtin, save_mask, save_png, split_dirs, write_readme
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

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


def write(root: Path, options: dict[str, Any]) -> None:
    size = options["size"]
    if not 64 <= size <= 960:
        raise PixelwiseError(f"quokka: size (longer side) must be between 64 and 960 pixels, got {size}")
    image, labels = quokka_scene(size)
    height = image.shape[0]
    palette = QUOKKA_CLASSES.palette().ravel().tolist()
    for split, (images_dir, masks_dir) in split_dirs(root).items():
        start, stop = (round(fraction * height) for fraction in QUOKKA_BANDS[split])
        save_png(images_dir / f"quokka_{split}.png", image[start:stop])
        save_mask(masks_dir / f"quokka_{split}.png", labels[start:stop], palette)
    QUOKKA_CLASSES.save(root / "classes.yaml")
    shutil.copyfile(ASSETS / "quokka" / "LICENSE.txt", root / "LICENSE.txt")
    shutil.copyfile(ASSETS / "quokka" / "SOURCE.md", root / "SOURCE.md")
    body = """
One real RGB photo of a quokka (shipped in the imgaug 0.4.0 wheel, MIT) with the animal's 39-point
polygon filled as the mask (about 30% foreground). The photo is cut into horizontal bands: the top half is
train, the next quarter val, the bottom quarter test, so no pixel is in two splits. It is still one animal
in one scene: a demo and an end-to-end test of the pipeline, not a benchmark. See SOURCE.md.
"""
    write_readme(root, "quokka (pixelwise built-in)", body, QUOKKA_CLASSES, options)


DATASET = Builtin(
    name="quokka",
    description="one real RGB photo with a polygon mask, binary, split in bands: a demo, not a benchmark",
    defaults={"size": 480},
    option_help={"size": "longer side"},
    write=write,
)
