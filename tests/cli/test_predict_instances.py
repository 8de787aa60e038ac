"""`pixelwise predict ... --instances`: objects of a network's masks beside them, split with its
probabilities; a rerun that finds everything done keeps the tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.io import read_label_image


@pytest.fixture
def checkpoint(tmp_path: Path, small_unet_checkpoint: Any) -> Path:
    """An untrained 2-class unet-small, its output bias set so that about half the pixels are class 1 (in
    blobs: the network's receptive field smooths its noise)."""

    def half_cells(model: Any) -> None:
        with torch.no_grad():
            logits = model((torch.rand(1, 1, 40, 52) - 0.5) / 0.25)[0]
            model.network.classifier.bias[1] -= (logits[1] - logits[0]).median()

    classes = ClassSpec(("background", "cell"), ((0, 0, 0), (255, 0, 0)))
    return small_unet_checkpoint(tmp_path / "run" / "best.pt", classes=classes, adjust=half_cells)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "batch2").mkdir(parents=True)
    generator = np.random.default_rng(0)
    Image.fromarray(generator.integers(0, 256, (40, 52), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(generator.integers(0, 256, (30, 20), dtype=np.uint8)).save(folder / "batch2" / "b.png")
    return folder


def test_predict_writes_the_objects_of_its_masks(cli: Any, checkpoint: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("predict", checkpoint, images, "-o", out, "--tile", "32", "--instances", "--min-size", "0")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 masks" in result.stdout and "objects: " in result.stdout and "in 2 images" in result.stdout
    with open(out / "instances" / "objects.csv", newline="") as file:
        table = list(csv.DictReader(file))
    for name, size in (("a", (40, 52)), ("batch2/b", (30, 20))):
        labels = read_label_image(out / "instances" / f"{name}.tif")
        assert labels.shape == size
        # every object of the label image has its row, and the objects cover the mask's class-1 pixels
        assert sorted(int(row["label"]) for row in table if row["image"] == name) == list(range(1, labels.max() + 1))
        mask = np.asarray(Image.open(out / f"{name}.png"))
        assert np.array_equal(labels > 0, mask == 1)
        features = json.loads((out / "instances" / f"{name}.geojson").read_text())["features"]
        assert len(features) == labels.max()
    # intensities in the stored 8-bit values
    assert max(float(row["mean_intensity"]) for row in table) > 1
    # the same command again: nothing to do, the tables as they were
    before = (out / "instances" / "objects.csv").read_text()
    again = cli("predict", checkpoint, images, "-o", out, "--tile", "32", "--instances", "--min-size", "0")
    assert again.returncode == 0 and "complete from an earlier run" in again.stdout
    assert (out / "instances" / "objects.csv").read_text() == before


def test_object_flags_need_instances(cli: Any, checkpoint: Path, images: Path, tmp_path: Path) -> None:
    result = cli("predict", checkpoint, images, "-o", tmp_path / "out", "--no-split")
    assert result.returncode == 2 and "--no-split is an option of --instances" in result.stderr
    assert not (tmp_path / "out").exists()
