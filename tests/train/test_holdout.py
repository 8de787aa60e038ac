"""A validation set carved from the training images: deterministic, disjoint from training, regions of one image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig
from pixelwise.train.holdout import carve_validation, grid_blocks
from pixelwise.train.loop import fit

from .conftest import TinyData, make_data


def stems(samples: object) -> list[str]:
    return [sample.stem for sample in samples]  # type: ignore[attr-defined]


def test_whole_images_are_held_out_deterministically_and_apart_from_training() -> None:
    train = make_data(20, seed=0)
    first = carve_validation(train, fraction=0.15, seed=3, crop_size=16)
    again = carve_validation(train, fraction=0.15, seed=3, crop_size=16)
    other = carve_validation(train, fraction=0.15, seed=4, crop_size=16)
    assert first is not None and again is not None and other is not None
    assert len(first.val) == 3 and len(first.train) == 17
    assert stems(first.val) == stems(again.val) and stems(first.train) == stems(again.train)
    assert stems(first.val) != stems(other.val)
    assert not set(stems(first.val)) & set(stems(first.train))
    assert sorted(stems(first.val) + stems(first.train)) == sorted(stems(train))
    # the training view still describes the data
    assert first.train.classes == train.classes and first.train.in_channels == 1  # type: ignore[attr-defined]
    assert "holding out 3 of 20 training images" in first.description


def test_one_image_is_tiled_and_no_labelled_pixel_is_in_both() -> None:
    train = make_data(1, seed=0, size=64)
    held = carve_validation(train, fraction=0.25, seed=0, crop_size=16)
    again = carve_validation(train, fraction=0.25, seed=0, crop_size=16)
    assert held is not None and again is not None and stems(held.val) == stems(again.val)
    image, mask = train[0].image, train[0].mask
    assert mask is not None
    blocks = grid_blocks(mask.shape, crop_size=16)
    assert len(held.val) == round(0.25 * len(blocks)) >= 1 and "regions of the training image" in held.description
    training_mask = held.train[0].mask
    ignore = train.classes.ignore_index
    covered = np.zeros(mask.shape, bool)
    for sample in held.val:
        # the validation region is a piece of the image with its labels, and training sees none of them
        top, bottom, left, right = map(int, re.fullmatch(r"tiny0\[(\d+):(\d+),(\d+):(\d+)\]", sample.stem).groups())
        rows, columns = slice(top, bottom), slice(left, right)
        assert np.array_equal(sample.image, image[rows, columns]) and np.array_equal(sample.mask, mask[rows, columns])
        assert (training_mask[rows, columns] == ignore).all()
        covered[rows, columns] = True
    # everywhere else training keeps the labels as they were
    assert np.array_equal(training_mask[~covered], mask[~covered])
    assert train[0].mask is mask and (mask != ignore).sum() > 1  # the source itself is not changed


def test_nothing_is_held_out_at_fraction_zero() -> None:
    assert carve_validation(make_data(8, seed=0), fraction=0.0, seed=0, crop_size=16) is None


def test_fit_without_validation_images_validates_on_the_held_out_ones(
    tmp_path: Path, tiny_train: TinyData, caplog: pytest.LogCaptureFixture
) -> None:
    config = TrainConfig(epochs=1, batch_size=4, crop_size=16, patience=0)
    with caplog.at_level("INFO", logger="pixelwise.train"):
        result = fit(config, tiny_train, out_dir=tmp_path / "run", progress=False)
    assert "val_miou" in result.history[0] and "holding out 1 of 8 training images" in caplog.text
    assert "training unet-small on 7 images" in caplog.text
    with pytest.raises(PixelwiseError, match=r"val_fraction must be in \[0, 1\), got 1.5"):
        config.replace(val_fraction=1.5)
