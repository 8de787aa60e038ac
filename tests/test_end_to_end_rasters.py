"""Multispectral, georeferenced data end to end through the commands a user types: a dataset of 6-band 16-bit
GeoTIFFs trained, predicted (PyTorch and ONNX Runtime) into GeoTIFF masks that lie where their scenes lie,
evaluated; and each bad input refused in one line."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelwise.checkpoint import load_checkpoint
from pixelwise.cli import main

TRAIN = [
    "--model",
    "unet-small",
    "--model-option",
    "width=8",
    "--model-option",
    "depth=2",
    "--epochs",
    "1",
    "--iterations-per-epoch",
    "8",
    "--crop-size",
    "32",
    "--batch-size",
    "4",
    "--tile-size",
    "32",
    "-q",
    "--threads",
    "1",
]


def one_error(result: Any, *fragments: str) -> str:
    """Exit status 2 and one error line naming every fragment, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("pixelwise: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, geodata: Any) -> tuple[Path, Path]:
    """(dataset, run folder): 6-band 16-bit GeoTIFF scenes with no data, and a model trained on them."""
    root = tmp_path_factory.mktemp("rasters")
    scenes = geodata.write_signal_dataset(root / "scenes", count=8)
    # the command in this process, as the cli fixture runs it (a fixture of one test, not of the module)
    saved = sys.argv
    sys.argv = ["pixelwise", "train", str(scenes), "--out", str(root / "run"), "--nodata", "0", *TRAIN]
    try:
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exit_:
            main()
    finally:
        sys.argv = saved
    assert exit_.value.code in (0, None)
    return scenes, root / "run"


def test_train_predict_evaluate_keeps_every_georeference(trained: tuple[Path, Path], cli: Any, tmp_path: Path) -> None:
    import rasterio

    scenes, run = trained
    checkpoint = load_checkpoint(run / "best.pt")
    assert checkpoint.in_channels == 6 and checkpoint.input_bands is not None
    assert checkpoint.input_bands.nodata == 0 and checkpoint.input_bands.ranges is not None

    out = tmp_path / "masks"
    result = cli("predict", run / "best.pt", scenes / "images", "--out", out, "--overlay", "-q", "--backend", "torch")
    assert result.returncode == 0, result.stderr
    images = sorted((scenes / "images").glob("*.tif"))
    masks = sorted(out.glob("*.tif"))
    assert [mask.name for mask in masks] == [image.name for image in images]
    for image, mask in zip(images, masks, strict=True):
        with rasterio.open(image) as scene, rasterio.open(mask) as labels:
            assert labels.crs == scene.crs and labels.transform == scene.transform, mask
            assert (labels.width, labels.height) == (scene.width, scene.height), mask
            values = labels.read(1)
            assert labels.nodata == 255 and (values[:4] == 255).all() and (values[4:] < 2).all()
    assert len(list((out / "overlays").glob("*.png"))) == len(images)

    scores = cli("evaluate", out, scenes, "--out", tmp_path / "scores.json")
    assert scores.returncode == 0, scores.stderr
    assert "pixels the predictions mark as no data (255) are left out" in scores.stderr


@pytest.mark.slow
def test_onnx_runtime_predicts_the_same_bands(trained: tuple[Path, Path], cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from pixelwise.data.io import read_mask

    scenes, run = trained
    exported = cli("export", run / "best.pt", "--out", tmp_path / "model.onnx")
    assert exported.returncode == 0, exported.stderr
    image = scenes / "images" / "scene_01.tif"
    for model, folder in ((tmp_path / "model.onnx", "onnx"), (run / "best.pt", "torch")):
        result = cli("predict", model, image, "--out", tmp_path / folder, "-q", "--backend", folder)
        assert result.returncode == 0, result.stderr
    onnx, torch = (read_mask(tmp_path / folder / "scene_01.tif") for folder in ("onnx", "torch"))
    assert (onnx == torch).mean() > 0.999


def test_each_bad_input_is_one_line(trained: tuple[Path, Path], cli: Any, tmp_path: Path, geodata: Any) -> None:
    scenes, run = trained
    # a band beyond the files
    beyond = cli("train", scenes, "--out", tmp_path / "beyond", "--bands", "4,7", *TRAIN)
    one_error(beyond, "scene_00.tif: band 7 is beyond its 6 bands; give --bands between 1 and 6")
    # a 4-band scene for a model of 6
    four = geodata.write_raster(tmp_path / "four.tif", np.ones((4, 20, 20), np.uint16))
    refused = cli("predict", run / "best.pt", four, "--out", tmp_path / "out", "-q")
    one_error(refused, "four.tif: an image of 4 bands, but the model was trained on 6 bands")
    # a training set whose images have different band counts
    mixed = geodata.write_signal_dataset(tmp_path / "mixed", count=4)
    geodata.write_raster(mixed / "images" / "scene_02.tif", np.ones((4, 40, 48), np.uint16))
    one_error(cli("train", mixed, "--out", tmp_path / "mixed-run", *TRAIN), "scene_02.tif has 4 bands but")
    # a mask that lies elsewhere than its image
    shifted = geodata.write_signal_dataset(tmp_path / "shifted", count=4)
    for index in range(4):  # every mask one scene east of its image: whichever split checks first says so
        (shifted / "masks" / f"scene_{index:02d}.png").unlink()
        labels = np.zeros((1, 40, 48), np.uint8)
        geodata.write_raster(shifted / "masks" / f"scene_{index:02d}.tif", labels, affine=geodata.transform(index + 1))
    one_error(cli("train", shifted, "--out", tmp_path / "shifted-run", *TRAIN), ".tif lies elsewhere than its image")
