"""Segmentation metrics from one streaming confusion matrix, plus boundary F1.

Everything but boundary F1 follows from a (K, K) confusion matrix accumulated over images as one
``bincount`` of ``K * truth + prediction`` over the valid pixels (truth != ``ignore_index``). A class
absent from both truth and prediction has no IoU (0 / 0): it is NaN, left out of the means and listed
under ``absent_classes``, never counted as 0 or 1.

The scores are a ``Scores`` record (``ClassScores`` per class); ``Scores.to_dict()`` is their JSON form
(NaN written as null), the one ``pixelwise evaluate --json``, ``results.json`` and the checkpoints hold.

>>> truth = np.array([[0, 0, 1, 1]])
>>> pred = np.array([[0, 1, 1, 1]])
>>> scores = evaluate(pred, truth, classes=2)
>>> [round(scores.per_class[name].iou, 4) for name in ("class0", "class1")]
[0.5, 0.6667]
>>> round(scores.miou, 4), scores.pixel_accuracy
(0.5833, 0.75)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixelwise.data.classes import IGNORE_INDEX, ClassSpec
from pixelwise.errors import PixelwiseError


class ConfusionMatrix:
    """(K, K) pixel counts, rows = truth, columns = prediction, accumulated over images.

    >>> matrix = ConfusionMatrix(2)
    >>> matrix.update(np.array([0, 1, 1]), np.array([0, 1, 255]))
    >>> matrix.matrix.tolist()
    [[1, 0], [0, 1]]
    """

    def __init__(self, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray, *, name: str = "prediction") -> None:
        """Add one image (any shape, the same for both) to the counts."""
        if prediction.shape != truth.shape:
            raise PixelwiseError(
                f"{name}: prediction has shape {prediction.shape} but the truth {truth.shape}; "
                "predict at the truth's size"
            )
        truth_flat = truth.reshape(-1).astype(np.int64)
        prediction_flat = prediction.reshape(-1).astype(np.int64)
        valid = truth_flat != self.ignore_index
        outside_truth = valid & ((truth_flat < 0) | (truth_flat >= self.num_classes))
        if outside_truth.any():
            values = sorted(set(np.unique(truth_flat[outside_truth]).tolist()))[:8]
            raise PixelwiseError(
                f"{name}: the truth has values {values} outside the classes 0..{self.num_classes - 1} "
                f"and not the ignore index {self.ignore_index}; fix the mask or the class list"
            )
        prediction_valid = prediction_flat[valid]
        wrong = (prediction_valid < 0) | (prediction_valid >= self.num_classes)
        if wrong.any():
            values = sorted(set(np.unique(prediction_valid[wrong]).tolist()))[:8]
            raise PixelwiseError(
                f"{name}: the prediction has values {values} outside the classes 0..{self.num_classes - 1}; "
                "predictions must name a class at every pixel"
            )
        codes = self.num_classes * truth_flat[valid] + prediction_valid
        self.matrix += np.bincount(codes, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def scores(self) -> dict[str, Any]:
        """Per-class and mean scores; NaN marks a class with nothing to score (see the module docstring)."""
        matrix = self.matrix.astype(np.float64)
        true_positive = np.diag(matrix)
        truth_count = matrix.sum(axis=1)
        prediction_count = matrix.sum(axis=0)
        false_positive = prediction_count - true_positive
        false_negative = truth_count - true_positive
        total = matrix.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = true_positive / (true_positive + false_positive + false_negative)
            dice = 2 * true_positive / (2 * true_positive + false_positive + false_negative)
            recall = true_positive / truth_count
            precision = true_positive / prediction_count
        frequency = truth_count / total if total > 0 else np.zeros_like(truth_count)
        present_in_truth = truth_count > 0
        return {
            "iou": iou,
            "dice": dice,
            "accuracy": recall,
            "precision": precision,
            "support": truth_count.astype(np.int64),
            "miou": _nanmean(iou),
            "mean_dice": _nanmean(dice),
            "pixel_accuracy": float(true_positive.sum() / total) if total > 0 else math.nan,
            "mean_class_accuracy": _nanmean(recall),
            "fw_iou": float(np.sum(frequency[present_in_truth] * iou[present_in_truth])) if total > 0 else math.nan,
        }


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _class_boundaries(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, H, W) bool: the inner boundary pixels of each class (a pixel with a 4-neighbour of another label).

    The image frame is not a boundary: erosion treats the outside as the same class.
    """
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, 1)
    boundaries = np.zeros((num_classes, *labels.shape), dtype=bool)
    for index in range(num_classes):
        region = labels == index
        if region.any():
            boundaries[index] = region & ~ndimage.binary_erosion(region, structure, border_value=1)
    return boundaries


class BoundaryF1:
    """Boundary F1 per class, streamed over images (precision and recall counts add up across images).

    A predicted boundary pixel counts as correct when a true boundary pixel of the same class lies within
    ``tolerance`` pixels (Euclidean), and vice versa for recall. Pixels whose truth is ``ignore_index``
    take part in neither.
    """

    def __init__(self, num_classes: int, *, tolerance: float = 2.0, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.tolerance = tolerance
        self.ignore_index = ignore_index
        # per class: matched predicted, all predicted, matched true, all true boundary pixels
        self.counts = np.zeros((num_classes, 4), dtype=np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        from scipy import ndimage  # not at import: the CLI loads the Scores record on the deploy path, without scipy

        valid = truth != self.ignore_index
        # where the truth is unknown, so is its boundary: pixels touching an ignored pixel score nowhere
        scored = ndimage.binary_erosion(valid, ndimage.generate_binary_structure(2, 1), border_value=1)
        # -1 marks "no class"; it needs a signed type (a uint8 mask cannot hold it: NumPy 2.5 refuses, 2.4 wrapped it to 255)
        truth_labels = np.where(valid, truth.astype(np.int64, copy=False), -1)
        predicted = _class_boundaries(prediction, self.num_classes) & scored
        true = _class_boundaries(truth_labels, self.num_classes) & scored
        for index in range(self.num_classes):
            has_predicted, has_true = predicted[index].any(), true[index].any()
            if not (has_predicted or has_true):
                continue
            if has_predicted and has_true:
                near_true = ndimage.distance_transform_edt(~true[index]) <= self.tolerance
                near_predicted = ndimage.distance_transform_edt(~predicted[index]) <= self.tolerance
                matched_predicted = int(np.count_nonzero(predicted[index] & near_true))
                matched_true = int(np.count_nonzero(true[index] & near_predicted))
            else:
                matched_predicted = matched_true = 0
            self.counts[index] += (
                matched_predicted,
                int(np.count_nonzero(predicted[index])),
                matched_true,
                int(np.count_nonzero(true[index])),
            )

    def per_class(self) -> np.ndarray:
        """(K,) F1; NaN for a class with no boundary pixel in truth or prediction."""
        matched_predicted, all_predicted, matched_true, all_true = self.counts.T.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(all_predicted > 0, matched_predicted / all_predicted, 0.0)
            recall = np.where(all_true > 0, matched_true / all_true, 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        return np.where((all_predicted + all_true) > 0, f1, np.nan)


@dataclass(frozen=True, kw_only=True)
class ClassScores:
    """One class's scores over every image scored; NaN where there is nothing to score (see the module)."""

    iou: float = math.nan
    dice: float = math.nan
    accuracy: float = math.nan  # recall: the share of the class's true pixels predicted as it
    precision: float = math.nan
    boundary_f1: float = math.nan
    support: int = 0  # the class's pixels in the truth

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, NaN as None."""
        return {
            "iou": json_number(self.iou),
            "dice": json_number(self.dice),
            "accuracy": json_number(self.accuracy),
            "precision": json_number(self.precision),
            "boundary_f1": json_number(self.boundary_f1),
            "support": self.support,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ClassScores:
        """What ``to_dict`` wrote; a missing or null score reads as NaN (hand-made or older files)."""
        return cls(
            iou=from_json_number(raw.get("iou")),
            dice=from_json_number(raw.get("dice")),
            accuracy=from_json_number(raw.get("accuracy")),
            precision=from_json_number(raw.get("precision")),
            boundary_f1=from_json_number(raw.get("boundary_f1")),
            support=int(raw.get("support") or 0),
        )


@dataclass(frozen=True, kw_only=True)
class Scores:
    """What ``Evaluator.result()`` gives: the summary scores, per-class scores and the counts behind them.

    Summary scores are NaN when nothing could be scored. ``per_class`` is in class order; ``absent_classes``
    lists the classes with no IoU (absent from truth and prediction); ``confusion_matrix`` is (K, K), rows
    truth, columns prediction (empty when not recorded). ``foreground_iou`` / ``foreground_dice``: class 1's,
    for two classes only (None otherwise). ``to_dict()`` is the JSON form; ``from_dict`` reads it back, a
    missing entry as "not scored", so that a hand-made or older ``results.json`` still reads.
    """

    miou: float = math.nan
    mean_dice: float = math.nan
    pixel_accuracy: float = math.nan
    mean_class_accuracy: float = math.nan
    fw_iou: float = math.nan
    boundary_f1: float = math.nan
    boundary_tolerance: float = math.nan
    per_class: Mapping[str, ClassScores] = field(default_factory=dict)
    absent_classes: tuple[str, ...] = ()
    confusion_matrix: tuple[tuple[int, ...], ...] = ()
    num_images: int = 0
    num_pixels: int = 0
    classes: tuple[str, ...] = ()
    ignore_index: int | None = None
    foreground_iou: float | None = None
    foreground_dice: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (strict JSON: NaN as None), in the order ``pixelwise evaluate --json`` writes it."""
        result: dict[str, Any] = {
            "miou": json_number(self.miou),
            "mean_dice": json_number(self.mean_dice),
            "pixel_accuracy": json_number(self.pixel_accuracy),
            "mean_class_accuracy": json_number(self.mean_class_accuracy),
            "fw_iou": json_number(self.fw_iou),
            "boundary_f1": json_number(self.boundary_f1),
            "boundary_tolerance": json_number(self.boundary_tolerance),
            "per_class": {name: scores.to_dict() for name, scores in self.per_class.items()},
            "absent_classes": list(self.absent_classes),
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
            "num_images": self.num_images,
            "num_pixels": self.num_pixels,
            "classes": list(self.classes),
            "ignore_index": self.ignore_index,
        }
        if self.foreground_iou is not None:
            result["foreground_iou"] = json_number(self.foreground_iou)
        if self.foreground_dice is not None:
            result["foreground_dice"] = json_number(self.foreground_dice)
        return result

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Scores:
        """What ``to_dict`` wrote (a null score reads as NaN)."""
        ignore_index = raw.get("ignore_index")
        return cls(
            miou=from_json_number(raw.get("miou")),
            mean_dice=from_json_number(raw.get("mean_dice")),
            pixel_accuracy=from_json_number(raw.get("pixel_accuracy")),
            mean_class_accuracy=from_json_number(raw.get("mean_class_accuracy")),
            fw_iou=from_json_number(raw.get("fw_iou")),
            boundary_f1=from_json_number(raw.get("boundary_f1")),
            boundary_tolerance=from_json_number(raw.get("boundary_tolerance")),
            per_class={
                str(name): ClassScores.from_dict(scores) for name, scores in (raw.get("per_class") or {}).items()
            },
            absent_classes=tuple(raw.get("absent_classes") or ()),
            confusion_matrix=tuple(tuple(int(count) for count in row) for row in raw.get("confusion_matrix") or ()),
            num_images=int(raw.get("num_images") or 0),
            num_pixels=int(raw.get("num_pixels") or 0),
            classes=tuple(raw.get("classes") or ()),
            ignore_index=None if ignore_index is None else int(ignore_index),
            foreground_iou=from_json_number(raw["foreground_iou"]) if "foreground_iou" in raw else None,
            foreground_dice=from_json_number(raw["foreground_dice"]) if "foreground_dice" in raw else None,
        )


def json_number(value: float) -> float | None:
    """A score for JSON, which has no NaN: NaN (nothing scored) as None."""
    return None if math.isnan(value) else value


def from_json_number(value: Any) -> float:
    """A score read from JSON: None (nothing scored) as NaN."""
    return math.nan if value is None else float(value)


class Evaluator:
    """Accumulates every metric of ``methods.md`` section 4 over images; ``result()`` gives a ``Scores``.

    >>> evaluator = Evaluator(ClassSpec.default(2))
    >>> evaluator.add(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [1, 1]]))
    >>> evaluator.result().miou
    1.0
    """

    def __init__(self, classes: ClassSpec | int, *, boundary_tolerance: float = 2.0) -> None:
        self.classes = classes if isinstance(classes, ClassSpec) else ClassSpec.default(classes)
        self.confusion = ConfusionMatrix(self.classes.num_classes, ignore_index=self.classes.ignore_index)
        self.boundary = BoundaryF1(
            self.classes.num_classes, tolerance=boundary_tolerance, ignore_index=self.classes.ignore_index
        )
        self.num_images = 0

    def add(self, prediction: np.ndarray, truth: np.ndarray, *, name: str = "prediction") -> None:
        """One image: prediction and truth (H, W) integer labels."""
        self.confusion.update(prediction, truth, name=name)
        self.boundary.update(np.asarray(prediction), np.asarray(truth))
        self.num_images += 1

    def merge(self, other: Evaluator) -> None:
        """Add the images ``other`` scored (same classes and tolerance): parts scored apart (on a cluster's
        workers) reduce into the score one evaluator gives, as every count is a sum over images."""
        if other.classes != self.classes or other.boundary.tolerance != self.boundary.tolerance:
            raise ValueError("only evaluators of the same classes and boundary tolerance merge")
        self.confusion.matrix += other.confusion.matrix
        self.boundary.counts += other.boundary.counts
        self.num_images += other.num_images

    def result(self) -> Scores:
        scores = self.confusion.scores()
        boundary = self.boundary.per_class()
        names = self.classes.names
        two_classes = self.classes.num_classes == 2
        return Scores(
            miou=scores["miou"],
            mean_dice=scores["mean_dice"],
            pixel_accuracy=scores["pixel_accuracy"],
            mean_class_accuracy=scores["mean_class_accuracy"],
            fw_iou=scores["fw_iou"],
            boundary_f1=_nanmean(boundary),
            boundary_tolerance=self.boundary.tolerance,
            per_class={
                name: ClassScores(
                    iou=float(scores["iou"][index]),
                    dice=float(scores["dice"][index]),
                    accuracy=float(scores["accuracy"][index]),
                    precision=float(scores["precision"][index]),
                    boundary_f1=float(boundary[index]),
                    support=int(scores["support"][index]),
                )
                for index, name in enumerate(names)
            },
            absent_classes=tuple(name for name, value in zip(names, scores["iou"], strict=True) if math.isnan(value)),
            confusion_matrix=tuple(tuple(row) for row in self.confusion.matrix.tolist()),
            num_images=self.num_images,
            num_pixels=int(self.confusion.matrix.sum()),
            classes=tuple(names),
            ignore_index=self.classes.ignore_index,
            foreground_iou=float(scores["iou"][1]) if two_classes else None,
            foreground_dice=float(scores["dice"][1]) if two_classes else None,
        )


def evaluate(
    prediction: np.ndarray | Sequence[np.ndarray],
    truth: np.ndarray | Sequence[np.ndarray],
    *,
    classes: ClassSpec | int,
    boundary_tolerance: float = 2.0,
) -> Scores:
    """Scores for one image (two (H, W) arrays) or for two equally long lists of them."""
    evaluator = Evaluator(classes, boundary_tolerance=boundary_tolerance)
    if isinstance(prediction, np.ndarray) and isinstance(truth, np.ndarray):
        evaluator.add(prediction, truth)
    else:
        predictions, truths = list(prediction), list(truth)
        if len(predictions) != len(truths):
            raise ValueError(f"{len(predictions)} predictions but {len(truths)} truths; pass one of each per image")
        for one_prediction, one_truth in zip(predictions, truths, strict=True):
            evaluator.add(one_prediction, one_truth)
    return evaluator.result()


def boundary_f1(
    prediction: np.ndarray,
    truth: np.ndarray,
    *,
    num_classes: int,
    tolerance: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> float:
    """Mean boundary F1 over the classes with a boundary in truth or prediction, for one image."""
    score = BoundaryF1(num_classes, tolerance=tolerance, ignore_index=ignore_index)
    score.update(prediction, truth)
    return _nanmean(score.per_class())


def json_ready(value: Any) -> Any:
    """NaN and infinities become None (JSON has none); numpy scalars and arrays become Python values.

    >>> json_ready({"iou": np.float64("nan"), "counts": np.array([1, 2]), 3: np.int64(4)})
    {'iou': None, 'counts': [1, 2], '3': 4}
    """
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_table(scores: Scores) -> str:
    """A readable per-class table and the summary scores, for the terminal."""

    def cell(value: float | None) -> str:
        return "   -  " if value is None or math.isnan(value) else f"{value:6.4f}"

    width = max(12, *(len(name) for name in scores.per_class))
    lines = [f"{'class':<{width}}  {'IoU':>6}  {'Dice':>6}  {'acc':>6}  {'bF1':>6}  {'pixels':>10}"]
    for name, one in scores.per_class.items():
        lines.append(
            f"{name:<{width}}  {cell(one.iou)}  {cell(one.dice)}  {cell(one.accuracy)}  "
            f"{cell(one.boundary_f1)}  {one.support:>10}"
        )
    lines.append("")
    for key in ("miou", "mean_dice", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "boundary_f1"):
        lines.append(f"{key:<20} {cell(getattr(scores, key))}")
    for key in ("foreground_iou", "foreground_dice"):
        if getattr(scores, key) is not None:
            lines.append(f"{key:<20} {cell(getattr(scores, key))}")
    if scores.absent_classes:
        lines.append(f"not scored (absent from truth and prediction): {', '.join(scores.absent_classes)}")
    lines.append(f"images: {scores.num_images}, pixels: {scores.num_pixels}")
    return "\n".join(lines)
