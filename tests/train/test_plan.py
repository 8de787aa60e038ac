"""The plan from the data: crop and batch from the image sizes, the loss from the class shares, the
normalisation from the stored type and the encoder; the user's own values kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data.folder import SegmentationFolder
from pixelwise.train.config import TrainConfig
from pixelwise.train.plan import fingerprint, plan_training

from .conftest import make_data


def write_folder(root: Path, *, sizes: list[tuple[int, int]], foreground: int, sixteen_bit: bool = False) -> Path:
    """A flat folder: one image per size, a ``foreground``-pixel square of class 1 in each mask."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate(sizes):
        mask = np.zeros((height, width), np.uint8)
        side = int(foreground**0.5)
        mask[:side, :side] = 1
        if sixteen_bit:
            # a 12-bit camera in a 16-bit file, plus one hot pixel
            image = (200 + 1000 * mask.astype(np.int64) + rng.integers(0, 50, mask.shape)).astype(np.uint16)
            image[-1, -1] = 65535
            tifffile.imwrite(root / "images" / f"i{index}.tif", image)
        else:
            Image.fromarray((60 + 120 * mask).astype(np.uint8)).save(root / "images" / f"i{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"i{index}.png")
    return root


def settings_of(plan: object) -> dict[str, object]:
    return {setting.name: setting.value for setting in plan.settings}  # type: ignore[attr-defined]


def test_sizes_come_from_every_header_and_crop_and_batch_follow_the_median(tmp_path: Path) -> None:
    sizes = [(64, 64)] * 5 + [(100, 90)] * 3 + [(300, 500)] * 2
    data = SegmentationFolder(write_folder(tmp_path / "d", sizes=sizes, foreground=400), "all")
    found = fingerprint(data, sampled=3)
    assert (found.images, found.sampled) == (10, 3)
    assert (found.median_size, found.smallest_size, found.largest_size) == ((82, 77), (64, 64), (300, 500))
    assert found.stored_types == ("uint8",)
    plan = plan_training(found, TrainConfig())
    assert settings_of(plan)["crop_size"] == 64  # 77 is nearer 64 than 96
    assert found.pixels == 5 * 64 * 64 + 3 * 100 * 90 + 2 * 300 * 500
    # 8 × 128² / 64² = 32, but a batch may cover 5 % of the 347,480 pixels: 4 crops
    assert settings_of(plan)["batch_size"] == 4
    assert "at most 5 % of the 347,480 training pixels" in plan.lines()[2]
    large = found.__class__(**{**found.__dict__, "median_size": (2000, 3000), "pixels": 10**9})
    assert [settings_of(plan_training(large, TrainConfig()))[name] for name in ("crop_size", "batch_size")] == [512, 2]
    many = found.__class__(**{**found.__dict__, "pixels": 10**9})
    assert settings_of(plan_training(many, TrainConfig()))["batch_size"] == 32  # 8 × 128² / 64²


def test_a_rare_class_brings_the_dice_term_and_a_common_one_does_not(tmp_path: Path) -> None:
    sizes = [(64, 64)] * 4
    rare = fingerprint(SegmentationFolder(write_folder(tmp_path / "rare", sizes=sizes, foreground=400), "all"))
    assert rare.class_shares["foreground"] == pytest.approx(400 / 4096)
    plan = plan_training(rare, TrainConfig())
    assert settings_of(plan)["loss"] == "ce+dice"
    assert "rare class 'foreground' has 9.8 % of the labelled pixels (balanced: 50.0 %)" in plan.lines()[3]
    common = fingerprint(SegmentationFolder(write_folder(tmp_path / "common", sizes=sizes, foreground=1600), "all"))
    assert settings_of(plan_training(common, TrainConfig()))["loss"] == "ce"


def test_normalization_names_the_statistic_by_stored_type_and_encoder(tmp_path: Path) -> None:
    sizes = [(64, 64)] * 2
    eight = fingerprint(SegmentationFolder(write_folder(tmp_path / "8", sizes=sizes, foreground=400), "all"))
    sixteen = fingerprint(
        SegmentationFolder(write_folder(tmp_path / "16", sizes=sizes, foreground=400, sixteen_bit=True), "all")
    )
    assert sixteen.stored_types == ("uint16",)
    # the hot pixel does not squash the rest: the image was scaled by its percentiles when read
    assert sixteen.intensity[0].high == pytest.approx(1.0) and sixteen.intensity[0].median < 0.2
    pretrained = TrainConfig(model="unet", encoder_weights="imagenet")
    assert settings_of(plan_training(eight, pretrained))["normalization"] == "imagenet"
    assert settings_of(plan_training(eight, TrainConfig()))["normalization"] == "dataset"
    planned = plan_training(sixteen, pretrained)
    assert settings_of(planned)["normalization"] == "dataset"
    assert "uint16 images, 1 band(s): the training set's mean±std per channel" in planned.lines()[4]
    assert "each image scaled by its 0.5..99.5th percentiles" in planned.lines()[4]


def test_a_multispectral_folder_is_planned_as_read_by_its_band_rule(tmp_path: Path, geodata: Any) -> None:
    """Six 16-bit bands with a no-data frame: the fingerprint has six channels without the no-data pixels,
    says that the bands were scaled by the training set's ranges, and a pretrained encoder's ImageNet
    statistics are not chosen for them; a --bands selection plans on the bands picked."""
    root = geodata.write_signal_dataset(tmp_path / "scenes", count=4)
    train = SegmentationFolder(root, "all")
    found = fingerprint(train)
    assert (found.channels, found.stored_types, found.band_ranges) == (6, ("uint16",), True)
    with_data = np.concatenate([sample.image[~train.missing_pixels(i)] for i, sample in enumerate(train)])
    every = np.concatenate([sample.image.reshape(-1, 6) for sample in train])
    assert found.intensity[0].mean == pytest.approx(with_data[:, 0].mean(), abs=1e-4)
    assert found.intensity[0].mean > every[:, 0].mean() + 0.02  # the no-data frame (read as 0) left out
    planned = plan_training(found, TrainConfig(model="unet", encoder_weights="imagenet"))
    assert settings_of(planned)["normalization"] == "dataset"
    assert "6 band(s)" in planned.lines()[4] and "each band scaled by the training set's" in planned.lines()[4]
    picked = fingerprint(SegmentationFolder(root, "all", bands=("B8", "B2")))
    assert picked.channels == 2 and len(picked.intensity) == 2


def test_without_validation_images_the_batch_counts_what_is_left_for_training(tmp_path: Path) -> None:
    sizes = [(64, 64)] * 4
    found = fingerprint(SegmentationFolder(write_folder(tmp_path / "d", sizes=sizes, foreground=400), "all"))
    million = found.__class__(**{**found.__dict__, "pixels": 10**6})
    config = TrainConfig(val_fraction=0.5)
    # 64² crops, 5 % of the training pixels: 50,000 / 4096 -> 12; half held out for validation: 6
    assert settings_of(plan_training(million, config))["batch_size"] == 12
    carved = plan_training(million, config, carved=True)
    assert settings_of(carved)["batch_size"] == 6 and "of the 500,000 training pixels" in carved.lines()[2]


def test_given_settings_are_kept_said_and_left_out_of_what_is_applied(tmp_path: Path) -> None:
    data = make_data(6, seed=0, size=40)
    config = TrainConfig(crop_size=96, loss="focal")
    plan = plan_training(fingerprint(data), config, given={"crop_size", "loss"})
    applied = plan.apply(config)
    assert (applied.crop_size, applied.loss) == (96, "focal")
    assert applied.batch_size == 2  # follows the given crop: 6 images of ~43² give less than one 96² crop
    assert applied.normalization == "dataset"
    assert plan.fingerprint.stored_types == ()  # in-memory samples have no files
    line = next(line for line in plan.lines() if line.strip().startswith("crop_size"))
    assert "given (the data says median image" in line
    saved = tmp_path / "data_plan.json"
    plan.save(saved)
    record = json.loads(saved.read_text())
    assert record["given"] == ["crop_size", "loss"]
    assert set(record["settings"]) == {"batch_size", "normalization"}
    assert record["fingerprint"]["images"] == 6
