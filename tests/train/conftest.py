"""Tiny in-memory datasets for the training tests: a few grey images with two shapes on a background."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec


class Sample(NamedTuple):
    image: np.ndarray
    mask: np.ndarray | None
    stem: str
    image_path: Path


class TinyData(list[Sample]):
    """A list of samples with the two attributes ``fit`` reads from a SegmentationFolder."""

    def __init__(self, samples: list[Sample], classes: ClassSpec, in_channels: int) -> None:
        super().__init__(samples)
        self.classes = classes
        self.in_channels = in_channels
        self.unlabeled_paths: list[Path] = []


def make_data(count: int, *, seed: int, num_classes: int = 3, channels: int = 1, size: int = 24) -> TinyData:
    """``count`` images of (size .. size + 7)² pixels: background 0, a bright square 1, a mid square 2."""
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(count):
        height, width = (int(value) for value in rng.integers(size, size + 8, 2))
        image = rng.normal(0.2, 0.05, (height, width, channels)).astype(np.float32)
        mask = np.zeros((height, width), np.uint8)
        for label, side, value in ((1, 8, 0.8), (2, 6, 0.5))[: num_classes - 1]:
            top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
            image[top : top + side, left : left + side] = value
            mask[top : top + side, left : left + side] = label
        mask[0, 0] = 255  # one ignored pixel everywhere: ignore_index must flow through the loop
        samples.append(Sample(np.clip(image, 0, 1), mask, f"tiny{index}", Path(f"tiny{index}.png")))
    names = ("background", "foreground") if num_classes == 2 else None
    return TinyData(samples, ClassSpec.default(num_classes, names=names), channels)


@pytest.fixture
def tiny_train() -> TinyData:
    return make_data(8, seed=0)


@pytest.fixture
def tiny_val() -> TinyData:
    return make_data(3, seed=1)
