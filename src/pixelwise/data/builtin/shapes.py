"""``shapes``: procedural grey scenes of discs, squares and triangles of equal area (4 classes), generated.

Every image is drawn from its own random stream keyed by (seed, split, index): an image does not change when
the count or another split changes, and no test image is a training image.
"""

from __future__ import annotations

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


def write(root: Path, options: dict[str, Any]) -> None:
    size, seed, noise = options["size"], options["seed"], options["noise"]
    if size < 16:
        raise PixelwiseError(f"shapes: size must be at least 16 pixels, got {size}")
    if noise < 0:
        raise PixelwiseError(f"shapes: noise is a standard deviation and cannot be negative, got {noise}")
    palette = SHAPES_CLASSES.palette().ravel().tolist()
    for split, (images, masks) in split_dirs(root).items():
        for index in range(split_counts(options["count"])[split]):
            # one stream per image: an image does not change when the count or another split changes
            rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
            image, labels = shapes_scene(rng, size, noise)
            save_png(images / f"{split}_{index:05d}.png", image)
            save_mask(masks / f"{split}_{index:05d}.png", labels, palette)
    SHAPES_CLASSES.save(root / "classes.yaml")
    body = """
Procedural grey scenes: 2–5 discs, squares and triangles of equal area per size, with random grey levels
(0.45–0.9) and stripes, on a smooth background (0.15–0.45), blurred (sigma 0.5–1.2 px) and with Gaussian
noise of standard deviation `noise`. A threshold finds the shapes but cannot name them: the outline does.
Every image comes from its own random stream keyed by (seed, split, index).
"""
    write_readme(root, "shapes (pixelwise built-in)", body, SHAPES_CLASSES, options)


DATASET = Builtin(
    name="shapes",
    description="procedural discs, squares and triangles with texture, blur and noise (4 classes, grey, instant)",
    defaults={"size": 64, "count": 200, "seed": 0, "noise": 0.05},
    option_help={
        "size": "image side",
        "count": "training images (val and test: a quarter as many)",
        "seed": "random seed",
        "noise": "noise standard deviation",
    },
    write=write,
)
