"""`pixelwise classical`: end to end on a tiny dataset folder written here, with --fit, --oracle and neither."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.classical import list_methods
from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder import SegmentationFolder
from pixelwise.data.io import read_mask, write_mask
from pixelwise.files import folder_entries

CLASSES = ClassSpec(("background", "cell"), ((0, 0, 0), (0, 255, 0)))


def write_dataset(root: Path, count: int = 7) -> Path:
    """Bright squares (cells) on a dark noisy background, 8-bit PNG images with palette masks."""
    (root / "images").mkdir(parents=True)
    CLASSES.save(root / "classes.yaml")
    for index in range(count):
        rng = np.random.default_rng(index)
        mask = np.zeros((20, 20), np.uint8)
        row, column = rng.integers(0, 12, 2)
        mask[row : row + 8, column : column + 8] = 1
        image = np.clip(np.where(mask == 1, 0.8, 0.2) + rng.normal(0, 0.03, mask.shape), 0, 1)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(root / "images" / f"cell{index}.png")
        write_mask(root / "masks" / f"cell{index}.png", mask, CLASSES)
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "cells")


def test_fit_on_train_then_segment_the_test_split(dataset: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli(
        "classical",
        "otsu",
        dataset,
        "-o",
        out,
        "--fit",
        dataset,
        "--save-fit",
        tmp_path / "fit.json",
        "--split",
        "test",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    test = SegmentationFolder(dataset, "test")
    assert sorted(path.name for path in folder_entries(out)) == sorted(f"{stem}.png" for stem in test.stems)
    for sample in test:
        predicted = read_mask(out / f"{sample.stem}.png", CLASSES)
        assert (predicted == sample.mask).mean() > 0.95
    assert "learned on" in result.stdout and "warning" not in result.stderr
    # the saved fit is reused without the training data, and gives the same masks
    again = cli(
        "classical", "otsu", dataset, "-o", tmp_path / "again", "--fit", tmp_path / "fit.json", "--split", "test"
    )
    assert again.returncode == 0, again.stderr
    for sample in test:
        first = read_mask(out / f"{sample.stem}.png", CLASSES)
        assert (read_mask(tmp_path / "again" / f"{sample.stem}.png", CLASSES) == first).all()
    assert json.loads((tmp_path / "fit.json").read_text())["method"] == "otsu"


def test_oracle_is_named_as_such_and_needs_masks(dataset: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("classical", "slic", dataset, "-o", tmp_path / "oracle", "--oracle", "--set", "segments=20", "-q")
    assert result.returncode == 0, result.stderr
    assert "ORACLE" in result.stdout and "slic-oracle" in result.stdout
    masks = list(folder_entries(tmp_path / "oracle"))
    assert masks and all(path.suffix == ".png" for path in masks)
    refused = cli("classical", "slic", dataset / "images", "-o", tmp_path / "x", "--oracle")
    assert refused.returncode == 2 and "--oracle needs the true masks" in refused.stderr


def test_without_fit_or_oracle_writes_region_labels(dataset: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    image = dataset / "images" / "cell0.png"
    result = cli("classical", "region_grow", image, "-o", tmp_path / "regions", "--set", "tolerance=0.2", "-q")
    assert result.returncode == 0, result.stderr
    assert "region labels, not classes" in result.stdout
    regions = tifffile.imread(tmp_path / "regions" / "cell0.tif")
    assert regions.shape == (20, 20) and regions.dtype == np.int32 and regions.max() >= 2
    folder = cli("classical", "felzenszwalb", dataset / "images", "-o", tmp_path / "all", "-q")
    assert folder.returncode == 0, folder.stderr
    assert len(list((tmp_path / "all").glob("*.tif"))) == 7


def test_fitting_on_the_segmented_images_warns(dataset: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("classical", "otsu", dataset, "-o", tmp_path / "o", "--fit", dataset, "--split", "all", "-q")
    assert result.returncode == 0 and "includes the fit's training images" in result.stderr


def test_a_folder_without_split_folders_is_segmented_whole(dataset: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    # no --split: the flat folder has no split of its own, so every image is segmented (the fit's training
    # images among them, which the warning says)
    result = cli("classical", "otsu", dataset, "-o", tmp_path / "o", "--fit", dataset, "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in folder_entries(tmp_path / "o")) == [f"cell{index}.png" for index in range(7)]
    assert f"every image of {dataset} includes the fit's training images" in result.stderr
    oracle = cli("classical", "otsu", dataset, "-o", tmp_path / "oracle", "--oracle", "-q")
    assert oracle.returncode == 0 and len(list(folder_entries(tmp_path / "oracle"))) == 7
    # a folder with train/ val/ test/ gives its test/ folder
    split_folder = tmp_path / "split"
    write_dataset(split_folder / "train", count=3)
    write_dataset(split_folder / "test", count=2)
    tested = cli("classical", "otsu", split_folder, "-o", tmp_path / "t", "--fit", split_folder, "-q")
    assert tested.returncode == 0, tested.stderr
    assert sorted(path.name for path in folder_entries(tmp_path / "t")) == ["cell0.png", "cell1.png"]
    assert "warning" not in tested.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["watershed"], "unknown classical method 'watershed' (did you mean 'sobel_watershed'?); choose from otsu"),
        (["otsu", "--set", "classes=3"], "otsu has no option 'classes'; its options are bins"),
        (["otsu", "--set", "bins"], "expected KEY=VALUE"),
        (["multi_otsu", "--set", "classes=zero"], "classes must be an integer"),
        (["otsu", "--oracle", "--fit", "x"], "exclude each other"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(dataset: Path, tmp_path: Path, cli, arguments, message) -> None:  # type: ignore[no-untyped-def]
    method, *flags = arguments
    result = cli("classical", method, dataset, "-o", tmp_path / "out", *flags)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_paths_and_a_fit_for_another_method(dataset: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("classical", "otsu", tmp_path / "nope.png", "-o", tmp_path / "out")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    cli(
        "classical", "otsu", dataset, "-o", tmp_path / "o", "--fit", dataset, "--save-fit", tmp_path / "otsu.json", "-q"
    )
    other = cli("classical", "kmeans", dataset, "-o", tmp_path / "k", "--fit", tmp_path / "otsu.json")
    assert other.returncode == 2 and "fitted for otsu, not kmeans" in other.stderr
    # the right format with a key missing: one line naming the file and the key, no traceback
    saved = json.loads((tmp_path / "otsu.json").read_text())
    del saved["labeler"]
    (tmp_path / "broken.json").write_text(json.dumps(saved))
    broken = cli("classical", "otsu", dataset, "-o", tmp_path / "b", "--fit", tmp_path / "broken.json")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'broken.json'}: the fitted segmenter has no 'labeler'" in broken.stderr


def test_help_lists_every_method(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("classical", "--help")
    assert result.returncode == 0
    assert all(name in re.sub(r"\s+", "", result.stdout) for name in list_methods())
