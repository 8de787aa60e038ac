"""Metrics: exact answers on tiny arrays, and agreement with torchmetrics on random ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.metrics import ConfusionMatrix, Evaluator, Scores, boundary_f1, evaluate


def test_confusion_matrix_counts_rows_truth_columns_prediction() -> None:
    matrix = ConfusionMatrix(3)
    matrix.update(np.array([[0, 1, 2], [2, 2, 0]]), np.array([[0, 1, 1], [2, 255, 1]]))
    assert matrix.matrix.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 1]]


def test_scores_worked_by_hand() -> None:
    truth = np.array([[0, 0, 0, 1], [1, 1, 2, 2]])
    prediction = np.array([[0, 0, 1, 1], [1, 2, 2, 2]])
    result = evaluate(prediction, truth, classes=3).to_dict()
    # class 0: TP 2, FN 1, FP 0 -> IoU 2/3, Dice 4/5; class 1: TP 2, FP 1, FN 1 -> 1/2, 4/6; class 2: TP 2, FP 1 -> 2/3
    assert result["per_class"]["class0"]["iou"] == pytest.approx(2 / 3)
    assert result["per_class"]["class1"]["iou"] == pytest.approx(1 / 2)
    assert result["per_class"]["class2"]["iou"] == pytest.approx(2 / 3)
    assert result["per_class"]["class1"]["dice"] == pytest.approx(4 / 6)
    assert result["miou"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert result["pixel_accuracy"] == pytest.approx(6 / 8)
    assert result["mean_class_accuracy"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert result["fw_iou"] == pytest.approx(3 / 8 * 2 / 3 + 3 / 8 * 1 / 2 + 2 / 8 * 2 / 3)
    assert result["num_images"] == 1 and result["num_pixels"] == 8


def test_absent_class_is_skipped_and_named() -> None:
    result = evaluate(np.array([[0, 1]]), np.array([[0, 1]]), classes=ClassSpec.default(3)).to_dict()
    assert result["miou"] == 1.0
    assert result["per_class"]["class2"]["iou"] is None
    assert result["absent_classes"] == ["class2"]


def test_ignore_index_pixels_count_nowhere() -> None:
    truth = np.array([[0, 255, 1, 255]])
    result = evaluate(np.array([[0, 1, 1, 0]]), truth, classes=2).to_dict()
    assert result["miou"] == 1.0 and result["num_pixels"] == 2


def test_binary_task_reports_foreground_scores() -> None:
    result = evaluate(np.array([[0, 1, 1, 0]]), np.array([[0, 1, 0, 0]]), classes=2).to_dict()
    assert result["foreground_iou"] == pytest.approx(1 / 2)
    assert result["foreground_dice"] == pytest.approx(2 / 3)


def test_out_of_range_values_are_refused_with_the_name() -> None:
    with pytest.raises(PixelwiseError, match=r"img_7.*\[3\]"):
        ConfusionMatrix(3).update(np.array([0]), np.array([3]), name="img_7")
    with pytest.raises(PixelwiseError, match="shape"):
        ConfusionMatrix(3).update(np.zeros((2, 2), int), np.zeros((2, 3), int))


def test_streaming_equals_one_shot() -> None:
    rng = np.random.default_rng(0)
    truths = [rng.integers(0, 4, (9, 7)) for _ in range(3)]
    predictions = [rng.integers(0, 4, (9, 7)) for _ in range(3)]
    streamed = evaluate(predictions, truths, classes=4).to_dict()
    whole = evaluate(np.concatenate(predictions, axis=1), np.concatenate(truths, axis=1), classes=4).to_dict()
    assert streamed["confusion_matrix"] == whole["confusion_matrix"]
    assert streamed["miou"] == pytest.approx(whole["miou"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_torchmetrics(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_classes = 5
    truth = rng.integers(0, num_classes, (3, 17, 23))
    truth[rng.random(truth.shape) < 0.1] = 255
    prediction = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, num_classes, truth.shape))
    prediction[prediction == 255] = 0
    ours = evaluate(list(prediction), list(truth), classes=num_classes).to_dict()

    reference_matrix = MulticlassConfusionMatrix(num_classes, ignore_index=255)
    reference_matrix.update(torch.from_numpy(prediction), torch.from_numpy(truth))
    assert ours["confusion_matrix"] == reference_matrix.compute().tolist()

    jaccard = MulticlassJaccardIndex(num_classes, average=None, ignore_index=255)
    per_class = jaccard(torch.from_numpy(prediction), torch.from_numpy(truth)).numpy()
    assert [ours["per_class"][f"class{i}"]["iou"] for i in range(num_classes)] == pytest.approx(per_class.tolist())
    assert ours["miou"] == pytest.approx(float(per_class.mean()))


def test_boundary_f1_perfect_shifted_and_far() -> None:
    truth = np.zeros((20, 20), int)
    truth[5:15, 5:15] = 1
    assert boundary_f1(truth, truth, num_classes=2) == 1.0
    shifted = np.roll(truth, 1, axis=1)
    assert boundary_f1(shifted, truth, num_classes=2, tolerance=2) == 1.0
    assert boundary_f1(shifted, truth, num_classes=2, tolerance=0) < 1.0
    far = np.zeros_like(truth)
    far[0:4, 0:4] = 1
    assert boundary_f1(far, truth, num_classes=2, tolerance=1) == 0.0


def test_boundary_f1_ignores_the_image_frame() -> None:
    # a class filling the whole image has no boundary at all
    assert math.isnan(boundary_f1(np.ones((5, 5), int), np.ones((5, 5), int), num_classes=2))


def test_evaluator_json_ready() -> None:
    import json

    evaluator = Evaluator(ClassSpec(("bg", "cell", "edge"), ((0, 0, 0), (255, 0, 0), (0, 255, 0))))
    evaluator.add(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [1, 0]]))
    text = json.dumps(evaluator.result().to_dict(), allow_nan=False)
    assert '"edge"' in text


def test_the_scores_are_a_record_whose_dict_reads_back() -> None:
    scores = evaluate(np.array([[0, 1]]), np.array([[0, 1]]), classes=ClassSpec.default(3))
    assert scores.miou == 1.0 and scores.per_class["class1"].iou == 1.0 and scores.per_class["class1"].support == 1
    assert math.isnan(scores.per_class["class2"].iou) and scores.absent_classes == ("class2",)
    assert scores.foreground_iou is None  # three classes: no foreground
    written = scores.to_dict()
    assert list(written) == [
        *("miou", "mean_dice", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "boundary_f1"),
        *("boundary_tolerance", "per_class", "absent_classes", "confusion_matrix", "num_images", "num_pixels"),
        *("classes", "ignore_index"),
    ]
    assert Scores.from_dict(written).to_dict() == written
    two = evaluate(np.array([[0, 1]]), np.array([[0, 0]]), classes=2)
    assert Scores.from_dict(two.to_dict()).to_dict() == two.to_dict() and "foreground_iou" in two.to_dict()
