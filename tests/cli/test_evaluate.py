"""`pixelwise evaluate`: pairs by stem, finds the classes, prints a table, writes JSON, refuses bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassJaccardIndex

from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder import SegmentationFolder
from pixelwise.data.io import read_mask, write_mask
from pixelwise.files import folder_entries
from pixelwise.metrics import evaluate

CLASSES = ClassSpec(("background", "cell", "debris"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(3)
    dataset, predictions = tmp_path / "data", tmp_path / "pred"
    (dataset / "test" / "masks").mkdir(parents=True)
    predictions.mkdir()
    CLASSES.save(dataset / "classes.yaml")
    truths, preds = [], []
    for index in range(3):
        truth = rng.integers(0, 3, (12, 15)).astype(np.uint8)
        truth[0, :3] = 255
        pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 3, truth.shape)).astype(np.uint8)
        pred[pred == 255] = 0
        # truth as an index PNG, prediction as the palette PNG that `predict` writes
        Image.fromarray(truth).save(dataset / "test" / "masks" / f"img_{index}.png")
        write_mask(predictions / f"img_{index}.png", pred, CLASSES)
        truths.append(truth)
        preds.append(pred)
    return dataset, predictions, truths, preds


def test_a_folder_without_split_folders_is_scored_whole(tmp_path: Path, cli, write_unseen) -> None:  # type: ignore[no-untyped-def]
    # a real-looking folder of 13 images (8-bit PNG and 16-bit TIFF) with images/ + masks/ and no split
    # folders: every one of its 13 masks is truth, not the 2 that a seeded 70/15/15 split would call test
    data, predictions = tmp_path / "cells", tmp_path / "pred"
    write_unseen(data, count=13)
    made = cli("classical", "multi_otsu", data, "-o", predictions, "--oracle", "--set", "classes=3", "-q")
    assert made.returncode == 0, made.stderr
    assert len(folder_entries(predictions)) == 13

    result = cli("evaluate", predictions, data, "-o", tmp_path / "scores.json")
    assert result.returncode == 0, result.stderr
    assert "not scored" not in result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["num_images"] == 13
    classes = ClassSpec.load(data / "classes.yaml")
    stems = sorted(path.stem for path in (data / "masks").iterdir())
    expected = evaluate(
        [read_mask(predictions / f"{stem}.png", classes) for stem in stems],
        [read_mask(data / "masks" / f"{stem}.png", classes) for stem in stems],
        classes=classes,
    )
    assert scores["miou"] == pytest.approx(expected.miou)
    # the masks alone (no images beside them) are a folder without split folders too
    alone = cli("evaluate", predictions, data / "masks", "--classes", data / "classes.yaml", "-o", tmp_path / "a.json")
    assert alone.returncode == 0, alone.stderr
    assert json.loads((tmp_path / "a.json").read_text())["num_images"] == 13

    # a split only when asked for: the seeded test split, the same images as SegmentationFolder's
    test_stems = SegmentationFolder(data, "test").stems
    assert 0 < len(test_stems) < 13
    chosen = cli("evaluate", predictions, data, "--split", "test", "-o", tmp_path / "t.json")
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads((tmp_path / "t.json").read_text())["num_images"] == len(test_stems)
    assert f"{13 - len(test_stems)} predictions" in chosen.stderr and "not scored" in chosen.stderr
    for truth in (data, data / "masks"):
        again = cli(
            "evaluate",
            predictions,
            truth,
            "--split",
            "test",
            "--classes",
            data / "classes.yaml",
            "-o",
            tmp_path / "x.json",
            "--overwrite",
        )
        assert again.returncode == 0, again.stderr
        assert json.loads((tmp_path / "x.json").read_text())["num_images"] == len(test_stems)


def test_a_folder_with_split_folders_is_scored_on_its_test_split(folders, cli) -> None:  # type: ignore[no-untyped-def]
    dataset, predictions, _, _ = folders
    (dataset / "val" / "masks").mkdir(parents=True)
    write_mask(dataset / "val" / "masks" / "other.png", np.zeros((12, 15), np.uint8), CLASSES)
    assert cli("evaluate", predictions, dataset).returncode == 0  # test/ only: "other" needs no prediction
    every = cli("evaluate", predictions, dataset, "--split", "all")
    assert every.returncode == 2 and "no prediction for 1 of 4 truth masks (other.png)" in every.stderr
    missing = cli("evaluate", predictions, dataset, "--split", "train")
    assert missing.returncode == 2 and "train/masks: no such folder" in missing.stderr
    bad = cli("evaluate", predictions, dataset, "--split", "testing")
    assert bad.returncode == 2 and "split 'testing' is not one of" in bad.stderr


def test_scores_match_an_independent_implementation(folders, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    dataset, predictions, truths, preds = folders
    result = cli("evaluate", predictions, dataset, "-o", tmp_path / "scores.json")
    assert result.returncode == 0, result.stderr
    assert "debris" in result.stdout and "miou" in result.stdout
    scores = json.loads((tmp_path / "scores.json").read_text())
    reference = MulticlassJaccardIndex(3, average=None, ignore_index=255)
    expected = reference(torch.from_numpy(np.stack(preds)).long(), torch.from_numpy(np.stack(truths)).long())
    assert [scores["per_class"][name]["iou"] for name in CLASSES.names] == pytest.approx(expected.tolist())
    assert scores["num_images"] == 3
    for key in ("miou", "mean_dice", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "boundary_f1"):
        assert isinstance(scores[key], float)


def test_missing_prediction_is_one_line_and_exit_2(folders, cli) -> None:  # type: ignore[no-untyped-def]
    dataset, predictions, _, _ = folders
    (predictions / "img_1.png").unlink()
    result = cli("evaluate", predictions, dataset)
    assert result.returncode == 2
    assert "img_1.png" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_prediction_of_another_size_names_the_file(folders, cli) -> None:  # type: ignore[no-untyped-def]
    dataset, predictions, _, _ = folders
    write_mask(predictions / "img_2.png", np.zeros((5, 5), np.uint8), CLASSES)
    result = cli("evaluate", predictions, dataset)
    assert result.returncode == 2 and "img_2.png" in result.stderr and "Traceback" not in result.stderr


def test_not_a_folder(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("evaluate", tmp_path / "nope", tmp_path)
    assert result.returncode == 2 and "not a folder" in result.stderr
