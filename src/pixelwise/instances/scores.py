"""How well objects were found: panoptic quality, F1 at IoU 0.5, aggregated Jaccard index, count error.

- **PQ** (Kirillov et al. 2019, as ``panopticapi`` computes it): per class, predicted and true objects of that
  class are matched when their IoU is above 0.5 (such a match is unique); over the whole set of images,
  SQ = mean IoU of the matches, RQ = TP / (TP + FP/2 + FN/2), PQ = SQ × RQ. The mean is over the classes
  that have any true or predicted object. A predicted object more than half on ignored truth pixels is no
  false positive, and its ignored pixels leave the IoU's union (panopticapi's void rule).
- **F1** at IoU 0.5: the same matching, classes disregarded (did we find the objects at all).
- **AJI** (Kumar et al. 2017, the nuclei benchmarks' measure): each true object with its best-IoU prediction,
  intersections over unions summed, plus the area of every true object without an overlapping prediction
  and of every prediction no true object chose, in the union. Summed over the images (``per_image`` has
  each image's own). Predicted pixels on ignored truth pixels are left out.
- **Count error**: (predicted − true) / true objects, per class and overall.

``InstanceEvaluator.add(predicted, truth)`` per image, ``.result() -> InstanceScores``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.labels import Instances
from pixelwise.metrics import from_json_number

MATCH_IOU = 0.5


@dataclass(frozen=True)
class ClassInstanceScores:
    """One class's PQ, SQ, RQ (NaN when the class has neither true nor predicted objects) and counts."""

    pq: float
    sq: float
    rq: float
    true_positives: int
    false_positives: int
    false_negatives: int
    count_true: int
    count_predicted: int
    count_error: float


@dataclass(frozen=True)
class ImageInstanceScores:
    """One image's AJI and object counts."""

    name: str
    aji: float
    count_true: int
    count_predicted: int


@dataclass(frozen=True)
class InstanceScores:
    """The object scores of a set of images; ``per_class`` by class name (object classes only)."""

    pq: float
    sq: float
    rq: float
    f1: float
    aji: float
    count_true: int
    count_predicted: int
    count_error: float
    per_class: dict[str, ClassInstanceScores]
    per_image: tuple[ImageInstanceScores, ...]
    match_iou: float = MATCH_IOU

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (NaN as None)."""
        ready = _json_ready(asdict(self))
        assert isinstance(ready, dict)
        return ready

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InstanceScores:
        """``to_dict``'s content read back (None as NaN; a missing count 0)."""
        per_class = {
            str(name): ClassInstanceScores(
                pq=from_json_number(item.get("pq")),
                sq=from_json_number(item.get("sq")),
                rq=from_json_number(item.get("rq")),
                true_positives=int(item.get("true_positives") or 0),
                false_positives=int(item.get("false_positives") or 0),
                false_negatives=int(item.get("false_negatives") or 0),
                count_true=int(item.get("count_true") or 0),
                count_predicted=int(item.get("count_predicted") or 0),
                count_error=from_json_number(item.get("count_error")),
            )
            for name, item in (raw.get("per_class") or {}).items()
        }
        per_image = tuple(
            ImageInstanceScores(
                str(item.get("name") or ""),
                from_json_number(item.get("aji")),
                int(item.get("count_true") or 0),
                int(item.get("count_predicted") or 0),
            )
            for item in raw.get("per_image") or ()
        )
        return cls(
            pq=from_json_number(raw.get("pq")),
            sq=from_json_number(raw.get("sq")),
            rq=from_json_number(raw.get("rq")),
            f1=from_json_number(raw.get("f1")),
            aji=from_json_number(raw.get("aji")),
            count_error=from_json_number(raw.get("count_error")),
            count_true=int(raw.get("count_true") or 0),
            count_predicted=int(raw.get("count_predicted") or 0),
            per_class=per_class,
            per_image=per_image,
            match_iou=from_json_number(raw.get("match_iou", MATCH_IOU)),
        )


@dataclass
class _Tally:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    iou_sum: float = 0.0
    count_true: int = 0
    count_predicted: int = 0


@dataclass(frozen=True)
class _Overlaps:
    """The pairs (predicted label, true label) that share pixels, with what the scores need of each."""

    predicted: np.ndarray  # (M,) labels 1..Np
    true: np.ndarray  # (M,) labels 1..Nt
    intersection: np.ndarray  # (M,) pixels
    predicted_area: np.ndarray  # (Np + 1,) by label, ignored pixels left out
    true_area: np.ndarray  # (Nt + 1,)
    predicted_void: np.ndarray  # (Np + 1,) pixels on ignored truth


class InstanceEvaluator:
    """Adds up object matches over images; ``result()`` gives the scores (see the module docstring)."""

    def __init__(self, classes: ClassSpec) -> None:
        self.classes = classes
        self._tallies: dict[int, _Tally] = {}
        self._found = _Tally()
        self._aji_intersection = 0
        self._aji_union = 0
        self._images: list[ImageInstanceScores] = []

    def add(self, predicted: Instances, truth: Instances, *, ignore: np.ndarray | None = None, name: str = "") -> None:
        """One image: its predicted and true objects (same size), and the truth's ignored pixels (H, W) bool."""
        if predicted.labels.shape != truth.labels.shape:
            raise ValueError(f"{name}: predicted {predicted.labels.shape} and true {truth.labels.shape} objects differ")
        overlaps = _overlaps(predicted.labels, truth.labels, ignore)
        for class_index in sorted(set(predicted.classes.tolist()) | set(truth.classes.tolist())):
            tally = self._tallies.setdefault(int(class_index), _Tally())
            _match(overlaps, predicted.classes == class_index, truth.classes == class_index, tally)
        _match(overlaps, np.ones(predicted.count, bool), np.ones(truth.count, bool), self._found)
        intersection, union = _aji_sums(overlaps)
        self._aji_intersection += intersection
        self._aji_union += union
        aji = intersection / union if union else math.nan
        self._images.append(ImageInstanceScores(name, aji, truth.count, predicted.count))

    def result(self) -> InstanceScores:
        per_class = {
            self.classes.names[index] if index < self.classes.num_classes else str(index): _class_scores(tally)
            for index, tally in sorted(self._tallies.items())
        }
        scored = [scores for scores in per_class.values() if not math.isnan(scores.pq)]
        found = self._found
        return InstanceScores(
            pq=_mean([scores.pq for scores in scored]),
            sq=_mean([scores.sq for scores in scored]),
            rq=_mean([scores.rq for scores in scored]),
            f1=_recognition(found),
            aji=self._aji_intersection / self._aji_union if self._aji_union else math.nan,
            count_true=found.count_true,
            count_predicted=found.count_predicted,
            count_error=_count_error(found),
            per_class=per_class,
            per_image=tuple(self._images),
        )


def _overlaps(predicted: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None) -> _Overlaps:
    predicted = predicted.astype(np.int64)
    truth = truth.astype(np.int64)
    predicted_count, true_count = int(predicted.max(initial=0)), int(truth.max(initial=0))
    void = np.zeros(predicted_count + 1, np.int64)
    if ignore is not None and ignore.any():
        void = np.bincount(predicted[ignore], minlength=predicted_count + 1)
    predicted_area = np.bincount(predicted.ravel(), minlength=predicted_count + 1)
    true_area = np.bincount(truth.ravel(), minlength=true_count + 1)
    both = (predicted > 0) & (truth > 0)
    pairs, intersection = np.unique(predicted[both] * (true_count + 1) + truth[both], return_counts=True)
    return _Overlaps(
        predicted=pairs // (true_count + 1),
        true=pairs % (true_count + 1),
        intersection=intersection,
        predicted_area=predicted_area,
        true_area=true_area,
        predicted_void=void,
    )


def _match(overlaps: _Overlaps, predicted_chosen: np.ndarray, true_chosen: np.ndarray, tally: _Tally) -> None:
    """Match the chosen predicted and true objects (bool by label - 1) at IoU > 0.5, and add to ``tally``."""
    keep = predicted_chosen[overlaps.predicted - 1] & true_chosen[overlaps.true - 1]
    predicted, true, intersection = overlaps.predicted[keep], overlaps.true[keep], overlaps.intersection[keep]
    # panopticapi's union: the prediction's pixels on ignored truth are neither in nor out
    union = (
        overlaps.predicted_area[predicted]
        + overlaps.true_area[true]
        - intersection
        - overlaps.predicted_void[predicted]
    )
    iou = intersection / np.maximum(union, 1)
    matched = iou > MATCH_IOU
    predicted_labels = np.flatnonzero(predicted_chosen) + 1
    unmatched = np.setdiff1d(predicted_labels, predicted[matched])
    # a prediction mostly on ignored pixels is no false positive
    mostly_void = overlaps.predicted_void[unmatched] > overlaps.predicted_area[unmatched] / 2
    tally.true_positives += int(matched.sum())
    tally.iou_sum += float(iou[matched].sum())
    tally.false_positives += int((~mostly_void).sum())
    tally.false_negatives += int(true_chosen.sum()) - int(matched.sum())
    tally.count_true += int(true_chosen.sum())
    tally.count_predicted += int(predicted_chosen.sum())


def _aji_sums(overlaps: _Overlaps) -> tuple[int, int]:
    """Kumar et al.'s C and U of one image (predicted pixels on ignored truth left out)."""
    true_area = overlaps.true_area
    predicted_area = overlaps.predicted_area - overlaps.predicted_void
    intersection = overlaps.intersection
    union = predicted_area[overlaps.predicted] + true_area[overlaps.true] - intersection
    iou = intersection / np.maximum(union, 1)
    # for each true object its best prediction (ties: the lower label, as argmax does)
    order = np.lexsort((overlaps.predicted, -iou, overlaps.true))
    first = np.ones(order.size, bool)
    first[1:] = overlaps.true[order][1:] != overlaps.true[order][:-1]
    best = order[first]
    chosen = np.unique(overlaps.predicted[best])
    matched_true = overlaps.true[best]
    total_intersection = int(intersection[best].sum())
    total_union = int(union[best].sum())
    total_union += int(true_area[1:].sum() - true_area[matched_true].sum())
    total_union += int(predicted_area[1:].sum() - predicted_area[chosen].sum())
    return total_intersection, total_union


def _class_scores(tally: _Tally) -> ClassInstanceScores:
    sq = tally.iou_sum / tally.true_positives if tally.true_positives else 0.0
    rq = _recognition(tally)
    return ClassInstanceScores(
        pq=sq * rq if not math.isnan(rq) else math.nan,
        sq=sq if not math.isnan(rq) else math.nan,
        rq=rq,
        true_positives=tally.true_positives,
        false_positives=tally.false_positives,
        false_negatives=tally.false_negatives,
        count_true=tally.count_true,
        count_predicted=tally.count_predicted,
        count_error=_count_error(tally),
    )


def _recognition(tally: _Tally) -> float:
    denominator = tally.true_positives + 0.5 * (tally.false_positives + tally.false_negatives)
    return tally.true_positives / denominator if denominator else math.nan


def _count_error(tally: _Tally) -> float:
    if tally.count_true == 0:
        return math.nan if tally.count_predicted == 0 else math.inf
    return (tally.count_predicted - tally.count_true) / tally.count_true


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _json_ready(value: object) -> object:
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def format_scores(scores: InstanceScores) -> str:
    """The object scores for the terminal: one line per class, then the summary."""

    def cell(value: float) -> str:
        return "   -  " if math.isnan(value) else f"{value:6.4f}"

    width = max(12, *(len(name) for name in scores.per_class)) if scores.per_class else 12
    lines = [
        f"{'objects':<{width}}  {'PQ':>6}  {'SQ':>6}  {'RQ':>6}  {'TP':>6}  {'FP':>6}  {'FN':>6}  {'found/true':>12}"
    ]
    for name, item in scores.per_class.items():
        lines.append(
            f"{name:<{width}}  {cell(item.pq)}  {cell(item.sq)}  {cell(item.rq)}  {item.true_positives:>6}  "
            f"{item.false_positives:>6}  {item.false_negatives:>6}  {f'{item.count_predicted}/{item.count_true}':>12}"
        )
    lines.append("")
    lines.append(f"{'PQ (mean)':<20} {cell(scores.pq)}")
    lines.append(f"{f'F1 at IoU {scores.match_iou}':<20} {cell(scores.f1)}")
    lines.append(f"{'AJI':<20} {cell(scores.aji)}")
    error = "   -  " if not math.isfinite(scores.count_error) else f"{scores.count_error:+.1%}"
    lines.append(f"{'count error':<20} {error} ({scores.count_predicted} found, {scores.count_true} true)")
    return "\n".join(lines)
