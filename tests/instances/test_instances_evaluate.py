"""`pixelwise evaluate --instances`: where the objects come from, what is printed and kept, and the notes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import write_mask
from pixelwise.instances.io import write_label_image
from pixelwise.instances.labels import Instances
from pixelwise.instances.scores import InstanceEvaluator
from pixelwise.instances.truth import instances_from_labels

CLASSES = ClassSpec(("background", "nucleus"), ((0, 0, 0), (255, 0, 0)))


def discs(centres: list[tuple[int, int]], radius: float = 5.5, size: int = 40) -> np.ndarray:
    rows, columns = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    for index, (row, column) in enumerate(centres):
        labels[(rows - row) ** 2 + (columns - column) ** 2 <= radius**2] = index + 1
    return labels


def make_folders(root: Path, *, truth_instances: bool) -> tuple[Path, Path, np.ndarray]:
    """A truth folder of two images (a touching pair and a lone disc each) and predicted masks: the truth
    with the lone disc of the second image missed."""
    truth, predictions = root / "truth", root / "pred"
    (truth / "masks").mkdir(parents=True)
    (truth / "instances").mkdir()
    predictions.mkdir()
    CLASSES.save(truth / "classes.yaml")
    objects = discs([(12, 10), (12, 20), (30, 28)])
    for index in range(2):
        mask = (objects > 0).astype(np.uint8)
        Image.fromarray(mask).save(truth / "masks" / f"img{index}.png")
        if truth_instances:
            tifffile.imwrite(truth / "instances" / f"img{index}.tif", objects)
        predicted = mask.copy()
        if index == 1:
            predicted[objects == 3] = 0
        write_mask(predictions / f"img{index}.png", predicted, CLASSES)
    return truth, predictions, objects


def test_objects_are_scored_from_the_truths_label_images_and_found_in_predicted_masks(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    truth, predictions, _ = make_folders(tmp_path, truth_instances=True)
    result = cli("evaluate", predictions, truth, "--instances", "-o", tmp_path / "scores.json", "-q")
    assert result.returncode == 0, result.stderr
    assert "PQ (mean)" in result.stdout and "AJI" in result.stdout
    assert "2 of 2 predictions have no instances/<stem>.tif" in result.stderr
    assert "truth masks have no instances" not in result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())["instances"]
    # the split found the touching pair in both images; the second misses its lone disc
    assert (scores["count_true"], scores["count_predicted"]) == (6, 5)
    assert scores["count_error"] == -1 / 6
    assert scores["per_class"]["nucleus"]["false_negatives"] == 1
    assert "-16.7%" in result.stdout


def test_predicted_label_images_are_used_and_a_truth_without_any_is_said(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    truth, predictions, objects = make_folders(tmp_path, truth_instances=False)
    (predictions / "instances").mkdir()
    # the predicted objects as --instances writes them: the touching pair as one object
    merged = np.where(objects == 2, 1, objects)
    merged = np.where(merged == 3, 2, merged).astype(np.int32)
    for index in range(2):
        write_label_image(predictions / "instances" / f"img{index}.tif", merged)
    result = cli("evaluate", predictions, truth, "--instances", "-o", tmp_path / "scores.json", "-q")
    assert result.returncode == 0, result.stderr
    assert "2 of 2 truth masks have no instances/<stem> label image" in result.stderr
    assert "predictions have no instances" not in result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())["instances"]
    # the truth, from the masks' components, also sees the pair as one: 2 objects an image
    assert (scores["count_true"], scores["count_predicted"]) == (4, 3)
    # the same as the library on the same objects
    evaluator = InstanceEvaluator(CLASSES)
    for index in range(2):
        mask = (objects > 0).astype(np.uint8)
        true_labels = np.where(objects == 2, 1, objects)
        true_labels = np.where(true_labels == 3, 2, true_labels).astype(np.int32)
        predicted = instances_from_labels(merged, mask if index == 0 else np.where(objects == 3, 0, mask), CLASSES)
        evaluator.add(predicted, Instances(true_labels, np.ones(2, np.int32)))
    assert scores["pq"] == evaluator.result().pq


def test_without_the_flag_nothing_changes(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    truth, predictions, _ = make_folders(tmp_path, truth_instances=True)
    result = cli("evaluate", predictions, truth, "-o", tmp_path / "scores.json", "-q")
    assert result.returncode == 0, result.stderr
    assert "instances" not in json.loads((tmp_path / "scores.json").read_text())
    assert "PQ" not in result.stdout


def test_saved_probabilities_beside_the_masks_part_objects_where_they_dip(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    truth, predictions = tmp_path / "truth", tmp_path / "pred"
    for folder in (truth / "masks", truth / "instances", predictions / "probabilities"):
        folder.mkdir(parents=True)
    CLASSES.save(truth / "classes.yaml")
    objects = np.zeros((20, 40), np.int32)
    objects[2:18, 2:20] = 1
    objects[2:18, 20:38] = 2  # two objects in one wide blob: no neck for the distance to find
    mask = (objects > 0).astype(np.uint8)
    Image.fromarray(mask).save(truth / "masks" / "a.png")
    tifffile.imwrite(truth / "instances" / "a.tif", objects)
    write_mask(predictions / "a.png", mask, CLASSES)
    first = cli("evaluate", predictions, truth, "--instances", "-o", tmp_path / "mask.json", "-q")
    assert json.loads((tmp_path / "mask.json").read_text())["instances"]["count_predicted"] == 1
    probabilities = np.stack([1 - mask, mask]).astype(np.float16)
    probabilities[:, :, 19:21] = [[[0.9]], [[0.1]]]  # the network saw the line between them
    np.save(predictions / "probabilities" / "a.npy", probabilities)
    second = cli("evaluate", predictions, truth, "--instances", "-o", tmp_path / "probabilities.json", "-q")
    assert second.returncode == 0 and first.returncode == 0, second.stderr
    assert "1 with their probabilities/<stem>.npy" in second.stderr
    assert json.loads((tmp_path / "probabilities.json").read_text())["instances"]["count_predicted"] == 2


def test_label_images_of_predictions_in_sub_folders_keep_their_place(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    truth, predictions, objects = make_folders(tmp_path, truth_instances=True)
    (predictions / "batch" / "instances").mkdir(parents=True)
    (predictions / "instances" / "batch").mkdir(parents=True)
    for folder in ("masks", "instances"):  # the truth of batch/img0 is named batch/img0 too
        (truth / folder / "batch").mkdir()
    for index in range(2):
        for folder, suffix in (("masks", "png"), ("instances", "tif")):
            (truth / folder / f"img{index}.{suffix}").rename(truth / folder / "batch" / f"img{index}.{suffix}")
        (predictions / f"img{index}.png").rename(predictions / "batch" / f"img{index}.png")
        # as a job writes OUT/instances/<name>.tif for the image named batch/img0: all three discs found
        write_label_image(predictions / "instances" / "batch" / f"img{index}.tif", objects)
    result = cli("evaluate", predictions, truth, "--instances", "-o", tmp_path / "scores.json", "-q")
    assert result.returncode == 0, result.stderr
    assert "predictions have no instances" not in result.stderr
    assert "truth masks have no instances" not in result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())["instances"]
    # the second image's mask lacks the lone disc, so its object is dropped as background: 5 of 6 found
    assert (scores["count_true"], scores["count_predicted"], scores["pq"]) == (6, 5, 5 / 5.5)
