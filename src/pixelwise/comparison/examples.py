"""The qualitative examples of a comparison: which test images, saved as PNG with every method's prediction.

The first ``num_examples`` test images clean, and the first one at the strongest level of each noise kind;
paths (relative to the report folder) go into ``results.json``'s ``examples``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.comparison.held_out import HeldOutImages, truth_of
from pixelwise.files import atomic_path
from pixelwise.noise import NoiseLevel, apply_noise
from pixelwise.report.results import Example

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec


def example_plan(levels: Sequence[NoiseLevel], count: int, num_examples: int) -> set[tuple[str, int]]:
    """(level key, image index) of the examples: the first images clean, the first one at the worst noise."""
    plan = {("clean", index) for index in range(min(num_examples, count))}
    if num_examples > 0 and count > 0:
        for kind in ("gaussian", "salt_pepper"):
            noisy = [level for level in levels if level.kind == kind and level.amount > 0]
            if noisy:
                plan.add((max(noisy, key=lambda level: level.amount).key, 0))
    return plan


def save_example_inputs(
    plan: set[tuple[str, int]],
    test: HeldOutImages,
    levels: Sequence[NoiseLevel],
    classes: ClassSpec,
    out: Path,
    seed: int,
) -> list[Example]:
    """Write each planned example's (noisy) image and truth as PNG; return the entries of ``examples``."""
    from PIL import Image

    from pixelwise.data.io import write_mask

    by_key = {level.key: level for level in levels}
    entries = []
    # clean rows first, then the noisy ones in sweep order
    order = [level.key for level in levels]
    for key, index in sorted(plan, key=lambda item: (order.index(item[0]), item[1])):
        sample = test[index]
        image = apply_noise(sample.image, by_key[key], seed=seed, index=index)
        prefix = f"examples/{index:03d}-{file_name(sample.stem)}-{key}"
        pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
        pixels = pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3]
        with atomic_path(out / f"{prefix}-image.png") as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        write_mask(out / f"{prefix}-truth.png", truth_of(sample), classes)
        entries.append(
            Example(
                stem=sample.stem,
                index=index,
                noise=key,
                noise_name=by_key[key].name,
                image=f"{prefix}-image.png",
                truth=f"{prefix}-truth.png",
            )
        )
    return entries


def save_example_prediction(
    examples: list[Example],
    plan: set[tuple[str, int]],
    method: str,
    classes: ClassSpec,
    out: Path,
    key: str,
    index: int,
    labels: np.ndarray,
) -> None:
    """Save ``labels`` as a palette PNG when (level ``key``, image ``index``) is one of the examples."""
    from pixelwise.data.io import write_mask

    if (key, index) not in plan:
        return
    for entry in examples:
        if entry.noise == key and entry.index == index:
            path = entry.image.removesuffix("-image.png") + f"-{file_name(method)}.png"
            write_mask(out / path, np.asarray(labels).astype(np.uint8), classes)
            entry.predictions[method] = path


def file_name(text: str) -> str:
    """A name safe in any file system: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)
