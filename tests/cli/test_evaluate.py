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
from pixelwise.data.io import write_mask

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


def test_scores_match_an_independent_implementation(folders, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    dataset, predictions, truths, preds = folders
    result = cli("evaluate", predictions, dataset, "--json", tmp_path / "scores.json")
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
