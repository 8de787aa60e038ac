"""A validation set when the data has none, carved from the training images, so that ``best.pt`` and early
stopping follow the validation mIoU rather than the training loss.

``carve_validation(train, fraction=, seed=, crop_size=)`` decides, deterministically from the seed:

- **whole images** when there are enough: ``data.splits.split_stems`` on the training stems (a hash of
  (seed, stem) orders them, so adding images moves few; at least one image when there are three or more);
- **regions** otherwise (one or two training images): each image is cut into a grid of blocks (a side of
  at least ``crop_size``, about a quarter of the shorter side), a seeded ``fraction`` of the blocks (at least
  one) becomes validation samples, and training keeps the image with the labels of those blocks hidden
  (``ignore_index``). The network still sees those pixels as context around a training crop, never their
  labels; a model is not validated on labels it learnt from.

Training and validation never share a labelled pixel (tests/train/test_holdout.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder import Sample
from pixelwise.data.splits import split_stems
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import LabeledSource, Samples, SubsetView, derived_seed
from pixelwise.train.distributed import is_main_process

logger = logging.getLogger(__name__)

_HOLDOUT = 0x5A1  # the key of the blocks' draw (with the seed and the image)

Block = tuple[slice, slice]


@dataclass(frozen=True)
class Holdout:
    """The training images that remain, the validation samples carved from them, and the log line."""

    train: LabeledSource
    val: Samples
    description: str


def validation_when_none(config: TrainConfig, train: LabeledSource) -> tuple[LabeledSource, Samples | None]:
    """What ``fit`` trains and validates on when it is given no validation images: the carved sets, or
    ``train`` and None (``val_fraction`` 0: ``best.pt`` follows the training loss); the main process says which."""
    holdout = carve_validation(train, fraction=config.val_fraction, seed=config.seed, crop_size=config.crop_size)
    if is_main_process():
        if holdout is None:
            logger.info(
                "no validation images: best.pt follows the training loss (val_fraction %g)", config.val_fraction
            )
        else:
            logger.info("no validation images: %s (val_fraction %g)", holdout.description, config.val_fraction)
    return (train, None) if holdout is None else (holdout.train, holdout.val)


def carve_validation(train: LabeledSource, *, fraction: float, seed: int, crop_size: int) -> Holdout | None:
    """``fraction`` of ``train`` as a validation set (None when ``fraction`` is 0 or nothing can be held out)."""
    count = len(train)
    if fraction <= 0 or count == 0:
        return None
    stems = [_stem(train[index], index) for index in range(count)] if count >= 3 else []
    if len(set(stems)) == count:
        split = split_stems(stems, seed, fraction, 0.0)
        if split["val"]:
            held = set(split["val"])
            kept = [index for index, stem in enumerate(stems) if stem not in held]
            val = [index for index, stem in enumerate(stems) if stem in held]
            return Holdout(
                train=TrainingView(train, kept),
                val=TrainingView(train, val),
                description=f"holding out {len(val)} of {count} training images for validation",
            )
    return _carve_regions(train, fraction=fraction, seed=seed, crop_size=crop_size)


def _carve_regions(train: LabeledSource, *, fraction: float, seed: int, crop_size: int) -> Holdout | None:
    blocks: list[list[Block]] = []
    val: list[Sample] = []
    total = 0
    for index in range(len(train)):
        sample = train[index]
        grid = grid_blocks(sample.image.shape, crop_size=crop_size) if sample.mask is not None else []
        total += len(grid)
        if len(grid) < 2:
            blocks.append([])
            continue
        draw = np.random.default_rng(derived_seed(seed, _HOLDOUT, index))
        held = min(len(grid) - 1, max(1, round(fraction * len(grid))))  # training keeps a block at least
        chosen = sorted(draw.permutation(len(grid))[:held].tolist())
        blocks.append([grid[number] for number in chosen])
        stem, path = _stem(sample, index), Path(str(getattr(sample, "image_path", f"{index}.png")))
        for rows, columns in blocks[-1]:
            name = f"{stem}[{rows.start}:{rows.stop},{columns.start}:{columns.stop}]"
            val.append(Sample(sample.image[rows, columns], sample.mask[rows, columns], name, path))
    if not val:
        return None
    images = "image" if len(train) == 1 else f"{len(train)} images"
    return Holdout(
        train=HiddenBlocks(train, blocks),
        val=val,
        description=(
            f"holding out {len(val)} of {total} regions of the training {images} for validation "
            "(their labels hidden from training)"
        ),
    )


def grid_blocks(shape: tuple[int, ...], *, crop_size: int) -> list[Block]:
    """A grid over an (H, W) image, row by row: blocks of a side of at least ``crop_size`` and about a quarter
    of the shorter side; an image that makes one block is halved along its longer side.

    >>> blocks = grid_blocks((64, 40), crop_size=16)   # 4 rows of 16, 2 columns of 20
    >>> len(blocks), blocks[-1]
    (8, (slice(48, 64, None), slice(20, 40, None)))
    >>> len(grid_blocks((20, 30), crop_size=32))   # smaller than a crop: two halves
    2
    """
    height, width = int(shape[0]), int(shape[1])
    side = max(crop_size, min(height, width) // 4, 1)
    rows, columns = max(1, height // side), max(1, width // side)
    if rows * columns < 2:
        rows, columns = (2, 1) if height >= width else (1, 2)
    row_edges = np.linspace(0, height, rows + 1).round().astype(int).tolist()
    column_edges = np.linspace(0, width, columns + 1).round().astype(int).tolist()
    return [
        (slice(top, bottom), slice(left, right))
        for top, bottom in itertools.pairwise(row_edges)
        for left, right in itertools.pairwise(column_edges)
        if bottom > top and right > left
    ]


class TrainingView(SubsetView):
    """``source[indices[i]]``, lazily, with what describes the source (classes, channels, unlabeled images)."""

    def __init__(self, source: LabeledSource, indices: Sequence[int]) -> None:
        super().__init__(source, indices)
        self.classes: ClassSpec = source.classes
        self.in_channels = int(source.in_channels)
        self.unlabeled_paths = list(getattr(source, "unlabeled_paths", []) or [])
        # how a folder reads its images (data.folder_bands): for the checkpoint and the unlabeled images
        self.input_bands = getattr(source, "input_bands", None)
        self.read_image = getattr(source, "read_image", None)

    def missing_pixels(self, index: int) -> Any:
        """The source's no-data pixels of sample ``index`` (None when it says none)."""
        missing = getattr(self.source, "missing_pixels", None)
        return missing(self.indices[index]) if missing is not None else None


class HiddenBlocks(TrainingView):
    """The training images with the labels of their validation blocks set to ``ignore_index``."""

    def __init__(self, source: LabeledSource, blocks: list[list[Block]]) -> None:
        super().__init__(source, range(len(source)))
        self.blocks = blocks

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        sample = self.source[index]
        if not self.blocks[index]:
            return sample
        mask = np.array(sample.mask, copy=True)
        for rows, columns in self.blocks[index]:
            mask[rows, columns] = self.classes.ignore_index
        return (
            sample._replace(mask=mask) if hasattr(sample, "_replace") else Sample(sample.image, mask, *_names(sample))
        )


def _stem(sample: Any, index: int) -> str:
    return str(getattr(sample, "stem", None) or index)


def _names(sample: Any) -> tuple[str, Path]:
    return str(getattr(sample, "stem", "")), Path(str(getattr(sample, "image_path", "")))
