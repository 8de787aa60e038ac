"""``nuclei``: one real 512×512 16-bit fluorescence image of nuclei (BBBC038) with its mask, in tiles.

The image is cut into its four 256×256 quadrants; ``seed`` picks two for train, one for val and one for
test, then each quadrant is cut into ``size``×``size`` tiles. No pixel is in two splits; a nucleus crossing
a quadrant border is split between them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.builtin.base import ASSETS, Builtin, save_mask, split_dirs, write_readme
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

NUCLEI_CLASSES = ClassSpec(("background", "nucleus"), ((0, 0, 0), (255, 0, 0)))
QUADRANTS = {"top-left": (0, 0), "top-right": (0, 1), "bottom-left": (1, 0), "bottom-right": (1, 1)}


def nuclei_quadrants(seed: int) -> dict[str, list[str]]:
    """Which quadrants of the nuclei image form each split: two train, one val, one test, chosen by ``seed``."""
    order = [list(QUADRANTS)[index] for index in np.random.default_rng(seed).permutation(4)]
    return {"train": sorted(order[:2]), "val": [order[2]], "test": [order[3]]}


def write(root: Path, options: dict[str, Any]) -> None:
    import tifffile

    size, seed = options["size"], options["seed"]
    image = tifffile.imread(ASSETS / "nuclei" / "img2d.tif")
    # the instance mask numbers each nucleus; the task is nucleus versus background, and the numbers stay
    # in instances/ for the object scores (evaluate --instances) and the boundary class
    objects = tifffile.imread(ASSETS / "nuclei" / "mask2d.tif").astype(np.int32)
    mask = (objects > 0).astype(np.uint8)
    half = image.shape[0] // 2
    if size < 16 or half % size:
        raise PixelwiseError(
            f"nuclei: size (tile side) must divide {half} and be at least 16, e.g. 64 or 128; got {size}"
        )
    palette = NUCLEI_CLASSES.palette().ravel().tolist()
    dirs = split_dirs(root)
    for split, quadrants in nuclei_quadrants(seed).items():
        images_dir, masks_dir = dirs[split]
        (masks_dir.parent / "instances").mkdir()
        for quadrant in quadrants:
            quadrant_row, quadrant_col = QUADRANTS[quadrant]
            for top in range(quadrant_row * half, (quadrant_row + 1) * half, size):
                for left in range(quadrant_col * half, (quadrant_col + 1) * half, size):
                    stem = f"{quadrant}_r{top:03d}_c{left:03d}"
                    # 16-bit TIFF as in the source: the real high-bit-depth path, not a rescaled PNG
                    tifffile.imwrite(images_dir / f"{stem}.tif", image[top : top + size, left : left + size])
                    save_mask(masks_dir / f"{stem}.png", mask[top : top + size, left : left + size], palette)
                    tile_objects = objects[top : top + size, left : left + size]
                    tifffile.imwrite(masks_dir.parent / "instances" / f"{stem}.tif", tile_objects, compression="zlib")
    NUCLEI_CLASSES.save(root / "classes.yaml")
    shutil.copyfile(ASSETS / "nuclei" / "LICENSE.txt", root / "LICENSE.txt")
    shutil.copyfile(ASSETS / "nuclei" / "SOURCE.md", root / "SOURCE.md")
    layout = "; ".join(f"{split}: {', '.join(names)}" for split, names in nuclei_quadrants(seed).items())
    body = f"""
One real fluorescence microscopy image of cell nuclei (512×512, uint16; 2018 Data Science Bowl, BBBC038,
CC0; shipped in the stardist 0.9.2 wheel, BSD-3), binary: nucleus where the instance mask is above 0.
Split by quadrant so that no pixel is in two splits ({layout}), each quadrant cut into {size}×{size}
tiles. Images stay 16-bit TIFF; `read_image` scales each tile by its robust range. `instances/` holds each
tile's nuclei numbered (int32 label TIFF; 125 nuclei in the whole image). See SOURCE.md.
"""
    write_readme(root, "nuclei (pixelwise built-in)", body, NUCLEI_CLASSES, options)


DATASET = Builtin(
    name="nuclei",
    description="real 512x512 16-bit fluorescence image of nuclei (BBBC038), binary, split by quadrant into tiles",
    defaults={"size": 128, "seed": 0},
    option_help={"size": "tile side", "seed": "which quadrants"},
    write=write,
)
