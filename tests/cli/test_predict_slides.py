"""`pixelwise predict` on a pyramidal TIFF: a tiled TIFF mask at the level asked for, the flags' refusals in
one line, and `pixelwise evaluate` reading the mask it wrote."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask


@pytest.fixture
def checkpoint(tmp_path: Path, small_unet_checkpoint: Any) -> Path:
    # trained at 1 µm/px: the level of that resolution is read
    return small_unet_checkpoint(
        tmp_path / "run" / "best.pt", classes=ClassSpec.default(2), in_channels=3, tile_size=64, mpp=1.0
    )


@pytest.fixture
def slide(tmp_path: Path) -> Path:
    image = np.random.default_rng(0).integers(0, 256, (256, 192, 3)).astype(np.uint8)
    path = tmp_path / "slides" / "scan.tif"
    path.parent.mkdir()
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(
            image, tile=(64, 64), photometric="rgb", resolution=(2e4, 2e4), resolutionunit="CENTIMETER", metadata=None
        )
        tiff.write(image[::2, ::2], tile=(64, 64), photometric="rgb", subfiletype=1, metadata=None)
    return path


def test_a_pyramid_is_predicted_at_the_models_resolution_into_a_tiled_mask(
    cli: Any, checkpoint: Path, slide: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = cli("predict", checkpoint, slide, "-o", out, "--backend", "torch", "--no-foreground-mask")
    assert result.returncode == 0, result.stderr
    assert "note: scan.tif: the model was trained at 1 µm/px: predicting on level 1 (1 µm/px)" in result.stderr
    assert f"wrote 1 mask to {out}" in result.stdout
    mask = read_mask(out / "scan.tif")
    assert mask.shape == (128, 96)
    # evaluate reads the TIFF masks predict writes
    truth = tmp_path / "truth"
    truth.mkdir()
    tifffile.imwrite(truth / "scan.tif", mask)
    scored = cli("evaluate", out, truth)
    assert scored.returncode == 0, scored.stderr
    assert re.search(r"miou\s+1\.0000", scored.stdout)  # the mask against itself


def test_the_slide_flags_refuse_in_one_line(cli: Any, checkpoint: Path, slide: Path, tmp_path: Path) -> None:
    result = cli("predict", checkpoint, slide, "-o", tmp_path / "a", "--level", "4", "--backend", "torch")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("there is no level 4; the image has 2 (level 0: 192 × 256, 1: 96 × 128); give --level 0 to 1")
    )
    result = cli("predict", checkpoint, slide, "-o", tmp_path / "b", "--level", "1", "--mpp", "2")
    assert result.returncode == 2 and "--level and --mpp exclude each other" in result.stderr
    result = cli("predict", checkpoint, slide, "-o", tmp_path / "c", "--mask-format", "jpeg")
    assert result.returncode == 2 and "--mask-format 'jpeg': choose one of auto, png, tiff" in result.stderr
    result = cli("predict", checkpoint, slide, "-o", tmp_path / "d", "--overlay")
    assert result.returncode == 2 and "--overlay draws a whole-image PNG" in result.stderr


def test_a_cluster_refuses_what_streams_in_bands_here(cli: Any, checkpoint: Path, slide: Path, tmp_path: Path) -> None:
    # workers take whole images: a slide's tiled TIFF, a level or the background skip stay in one process;
    # refused before any cluster is started or any file written
    result = cli("predict", checkpoint, slide, "-o", tmp_path / "a", "--workers", "1")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "--cluster / --workers run whole images on workers, and scan gets a tiled pyramidal TIFF mask (streamed in "
            "bands in this process): run those images without --cluster or --workers"
        )
    )
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    result = cli("predict", checkpoint, photo, "-o", tmp_path / "b", "--workers", "1", "--level", "0")
    assert result.returncode == 2
    assert "--cluster / --workers run whole images on workers, and --level (streamed" in result.stderr
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
