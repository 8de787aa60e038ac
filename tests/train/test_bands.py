"""Training on the bands that carry the signal: a 6-band model sees what an RGB-only model of the same scenes
cannot, and the checkpoint records how its images were read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelwise.checkpoint import load_checkpoint
from pixelwise.data.folder import SegmentationFolder
from pixelwise.train.config import TrainConfig
from pixelwise.train.loop import fit

FAST = TrainConfig(
    model="unet-small",
    model_options={"width": 8, "depth": 2},
    epochs=2,
    iterations_per_epoch=12,
    batch_size=4,
    crop_size=32,
    lr=1e-2,
    patience=0,
)


def test_the_6_band_model_beats_the_rgb_only_model_when_band_4_carries_the_signal(tmp_path: Path, geodata: Any) -> None:
    scenes = geodata.write_signal_dataset(tmp_path / "scenes", count=10)
    scores = {}
    for name, bands in (("six", ()), ("rgb", (1, 2, 3))):
        train = SegmentationFolder(scenes, "train", bands=bands)
        val = SegmentationFolder(scenes, "val", bands=bands, classes=train.classes)
        result = fit(FAST, train, val, out_dir=tmp_path / name, progress=False)
        scores[name] = result.best_score
        checkpoint = load_checkpoint(result.best_checkpoint)
        assert checkpoint.in_channels == (6 if name == "six" else 3)
        assert checkpoint.input_bands == train.input_bands and checkpoint.input_bands is not None
    # bands 1-3 are noise of one range for objects and background: the RGB model has nothing to learn from
    assert scores["six"] > scores["rgb"] + 0.15, scores
    assert scores["six"] > 0.6, scores
