"""`pixelwise classical ... --instances`: objects beside the class masks, a COCO file that imports back to the
same masks, and the flags refused where they mean nothing."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask

CLASSES = ClassSpec(("background", "cell"), ((0, 0, 0), (255, 0, 0)))


@pytest.fixture
def cells(tmp_path: Path) -> Path:
    """A flat dataset of 8 grey images of bright discs (two of them touching) and their masks."""
    root = tmp_path / "cells"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    CLASSES.save(root / "classes.yaml")
    rows, columns = np.mgrid[:48, :48]
    rng = np.random.default_rng(0)
    for index in range(8):
        mask = np.zeros((48, 48), np.uint8)
        for centre in ((14, 14), (14, 26), (34, 12 + 2 * index)):  # the first two touch
            mask[np.hypot(rows - centre[0], columns - centre[1]) < 6.5] = 1
        picture = np.where(mask == 1, 180, 40) + rng.integers(-10, 10, mask.shape)
        Image.fromarray(picture.astype(np.uint8)).save(root / "images" / f"c{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"c{index}.png")
    return root


def test_classical_writes_objects_whose_coco_file_imports_back_to_the_masks(
    cli: Any, cells: Path, tmp_path: Path
) -> None:
    pytest.importorskip("pycocotools")
    from pixelwise.data.importers import import_dataset

    out = tmp_path / "out"
    result = cli("classical", "otsu", cells, "-o", out, "--fit", cells, "--split", "all", "--instances", "--coco")
    assert result.returncode == 0, result.stderr
    assert "objects: 24 in 8 images" in result.stdout  # three discs each: the touching pair split
    with open(out / "instances" / "objects_summary.csv", newline="") as file:
        assert {(row["class"], row["count"]) for row in csv.DictReader(file)} == {("cell", "3")}
    assert sorted(path.name for path in (out / "instances").glob("c0.*")) == ["c0.geojson", "c0.tif"]
    # COCO's objects, imported as a dataset, give back the class masks written beside them
    imported = tmp_path / "imported"
    import_dataset("coco", out / "instances" / "objects.coco.json", imported, images=cells / "images")
    for index in range(8):
        np.testing.assert_array_equal(
            read_mask(imported / "masks" / f"c{index}.png", CLASSES), read_mask(out / f"c{index}.png", CLASSES)
        )


def test_a_rerun_with_other_object_options_is_another_job(cli: Any, cells: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = cli("classical", "otsu", cells, "-o", out, "--fit", cells, "--split", "test", "--instances")
    assert first.returncode == 0, first.stderr
    again = cli("classical", "otsu", cells, "-o", out, "--fit", cells, "--split", "test", "--instances")
    assert again.returncode == 0 and "complete from an earlier run" in again.stdout and "objects: " in again.stdout
    other = cli("classical", "otsu", cells, "-o", out, "--fit", cells, "--split", "test", "--instances", "--no-split")
    assert other.returncode == 2 and "add --overwrite" in other.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--min-size", "4"], "--min-size is an option of --instances; add --instances"),
        (["--instances", "--no-fit"], "regions are no classes: add --fit TRAIN_DATA (or --oracle)"),
        (["--instances", "--min-size", "-1"], "--min-size -1: give a number of pixels, 0 or more"),
    ],
)
def test_flags_that_mean_nothing_are_one_line(
    cli: Any, cells: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    fit = [] if "--no-fit" in flags else ["--fit", str(cells)]
    result = cli("classical", "otsu", cells, "-o", tmp_path / "out", *fit, *(f for f in flags if f != "--no-fit"))
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
