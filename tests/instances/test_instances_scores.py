"""PQ, F1, AJI and counts against a brute-force implementation written here from the papers' definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.labels import Instances
from pixelwise.instances.scores import InstanceEvaluator, format_scores

CLASSES = ClassSpec(("background", "cell", "debris"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))


def random_objects(rng: np.random.Generator, shape: tuple[int, int], count: int) -> Instances:
    """Rectangles dropped one over the other (later ones cover earlier ones), classes 1 or 2 at random."""
    labels = np.zeros(shape, np.int32)
    for label in range(1, count + 1):
        top, left = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
        height, width = rng.integers(2, 9), rng.integers(2, 9)
        labels[top : top + height, left : left + width] = label
    present = np.unique(labels[labels > 0])
    table = np.zeros(count + 1, np.int32)
    table[present] = np.arange(1, len(present) + 1)
    return Instances(table[labels], rng.integers(1, 3, len(present)).astype(np.int32))


def near_copy(rng: np.random.Generator, truth: Instances) -> Instances:
    """A prediction: the truth shifted by a pixel here and there, some objects dropped, merged or added."""
    labels = truth.labels.copy()
    if rng.random() < 0.5:
        labels = np.roll(labels, int(rng.integers(-1, 2)), axis=int(rng.integers(0, 2)))
    for label in range(1, truth.count + 1):
        if rng.random() < 0.15:
            labels[labels == label] = 0
        elif rng.random() < 0.1 and label > 1:
            labels[labels == label] = label - 1
    top, left = rng.integers(0, labels.shape[0] - 4, 2)
    labels[top : top + 3, left : left + 3] = truth.count + 1
    present = np.unique(labels[labels > 0])
    table = np.zeros(truth.count + 2, np.int32)
    table[present] = np.arange(1, len(present) + 1)
    classes = np.append(truth.classes, 1)[present - 1]
    flip = rng.random(len(classes)) < 0.1
    classes = np.where(flip, 3 - classes, classes).astype(np.int32)
    return Instances(table[labels], classes)


def brute_force(pairs: list[tuple[Instances, Instances]]) -> dict[str, float]:
    """The definitions, object by object: every predicted and true object as a pixel set."""
    tally: dict[int, list[float]] = {}  # class -> [tp, fp, fn, iou sum]
    found = [0, 0, 0]
    intersection_total = union_total = 0
    for predicted, truth in pairs:
        predicted_sets = [predicted.labels == label for label in range(1, predicted.count + 1)]
        true_sets = [truth.labels == label for label in range(1, truth.count + 1)]

        def iou(p: int, t: int, predicted_sets: list = predicted_sets, true_sets: list = true_sets) -> float:
            return (predicted_sets[p] & true_sets[t]).sum() / (predicted_sets[p] | true_sets[t]).sum()

        for class_index in (1, 2):
            chosen_p = [p for p in range(predicted.count) if predicted.classes[p] == class_index]
            chosen_t = [t for t in range(truth.count) if truth.classes[t] == class_index]
            matches = [(p, t) for p in chosen_p for t in chosen_t if iou(p, t) > 0.5]
            entry = tally.setdefault(class_index, [0, 0, 0, 0.0])
            entry[0] += len(matches)
            entry[1] += len(chosen_p) - len(matches)
            entry[2] += len(chosen_t) - len(matches)
            entry[3] += sum(iou(p, t) for p, t in matches)
        any_matches = [(p, t) for p in range(predicted.count) for t in range(truth.count) if iou(p, t) > 0.5]
        found[0] += len(any_matches)
        found[1] += predicted.count - len(any_matches)
        found[2] += truth.count - len(any_matches)
        # Kumar et al.'s algorithm: each true object with its best prediction; the unused ones add their area
        used: set[int] = set()
        for t in range(truth.count):
            overlapping = [p for p in range(predicted.count) if (predicted_sets[p] & true_sets[t]).any()]
            if not overlapping:
                union_total += true_sets[t].sum()
                continue
            best = max(overlapping, key=lambda p: (iou(p, t), -p))
            intersection_total += (predicted_sets[best] & true_sets[t]).sum()
            union_total += (predicted_sets[best] | true_sets[t]).sum()
            used.add(best)
        union_total += sum(predicted_sets[p].sum() for p in range(predicted.count) if p not in used)
    per_class = {}
    for class_index, (tp, fp, fn, iou_sum) in tally.items():
        if tp + fp + fn:
            sq = iou_sum / tp if tp else 0.0
            rq = tp / (tp + 0.5 * fp + 0.5 * fn)
            per_class[class_index] = sq * rq
    tp, fp, fn = found
    return {
        "pq": float(np.mean(list(per_class.values()))),
        "pq_cell": per_class.get(1, math.nan),
        "f1": tp / (tp + 0.5 * (fp + fn)),
        "aji": intersection_total / union_total,
    }


@pytest.mark.parametrize("seed", range(6))
def test_scores_agree_with_the_definitions_on_random_objects(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(3):
        truth = random_objects(rng, (32, 40), int(rng.integers(4, 14)))
        pairs.append((near_copy(rng, truth), truth))
    evaluator = InstanceEvaluator(CLASSES)
    for predicted, truth in pairs:
        evaluator.add(predicted, truth)
    scores = evaluator.result()
    expected = brute_force(pairs)
    assert scores.pq == pytest.approx(expected["pq"], abs=1e-12)
    assert scores.per_class["cell"].pq == pytest.approx(expected["pq_cell"], abs=1e-12)
    assert scores.f1 == pytest.approx(expected["f1"], abs=1e-12)
    assert scores.aji == pytest.approx(expected["aji"], abs=1e-12)
    assert scores.count_true == sum(truth.count for _, truth in pairs)
    assert scores.count_predicted == sum(predicted.count for predicted, _ in pairs)
    # the scores are not all perfect, or the test would not test much
    assert 0 < scores.pq < 1 and 0 < scores.aji < 1


def test_a_perfect_prediction_scores_one_and_a_merge_costs_what_the_definitions_say() -> None:
    truth = Instances(np.array([[1, 1, 0, 2, 2]] * 4, np.int32), np.array([1, 1], np.int32))
    evaluator = InstanceEvaluator(CLASSES)
    evaluator.add(truth, truth)
    perfect = evaluator.result()
    assert (perfect.pq, perfect.f1, perfect.aji, perfect.count_error) == (1.0, 1.0, 1.0, 0.0)
    assert list(perfect.per_class) == ["cell"]  # a class with no object anywhere is not averaged

    merged = Instances(np.array([[1, 1, 1, 1, 1]] * 4, np.int32), np.array([1], np.int32))
    evaluator = InstanceEvaluator(CLASSES)
    evaluator.add(merged, truth)
    scores = evaluator.result()
    # IoU 8/20 with either: no match, so 1 FP and 2 FN; AJI: both truths pick the merged object (Kumar et al.
    # let a prediction serve several), (8 + 8) / (20 + 20)
    assert scores.per_class["cell"].true_positives == 0
    assert (scores.per_class["cell"].false_positives, scores.per_class["cell"].false_negatives) == (1, 2)
    assert scores.pq == 0.0
    assert scores.aji == pytest.approx(16 / 40)
    assert scores.count_error == pytest.approx(-0.5)
    assert "count error" in format_scores(scores) and "-50.0%" in format_scores(scores)


def test_a_prediction_mostly_on_ignored_truth_is_no_false_positive() -> None:
    truth = Instances(np.array([[1, 1, 0, 0, 0, 0]] * 3, np.int32), np.array([1], np.int32))
    predicted = Instances(np.array([[1, 1, 0, 0, 2, 2]] * 3, np.int32), np.array([1, 1], np.int32))
    ignore = np.zeros(truth.labels.shape, bool)
    ignore[:, 3:] = True
    evaluator = InstanceEvaluator(CLASSES)
    evaluator.add(predicted, truth, ignore=ignore)
    cell = evaluator.result().per_class["cell"]
    assert (cell.true_positives, cell.false_positives, cell.false_negatives) == (1, 0, 0)


def test_classes_must_agree_for_panoptic_quality_but_not_for_f1() -> None:
    truth = Instances(np.array([[1, 1, 0, 2, 2]] * 2, np.int32), np.array([1, 2], np.int32))
    swapped = Instances(truth.labels, np.array([2, 1], np.int32))
    evaluator = InstanceEvaluator(CLASSES)
    evaluator.add(swapped, truth)
    scores = evaluator.result()
    assert scores.pq == 0.0 and scores.f1 == 1.0
    assert scores.to_dict()["per_class"]["debris"]["false_positives"] == 1  # type: ignore[index]


def test_scores_read_back_from_their_json() -> None:
    import json

    from pixelwise.instances.scores import InstanceScores

    truth = np.zeros((10, 10), np.int32)
    truth[1:4, 1:4], truth[6:9, 6:9] = 1, 2
    evaluator = InstanceEvaluator(ClassSpec.default(2))
    evaluator.add(Instances(truth.copy(), np.ones(2, np.int32)), Instances(truth, np.ones(2, np.int32)), name="a")
    evaluator.add(
        Instances(np.zeros((4, 4), np.int32), np.zeros(0, np.int32)),
        Instances(np.zeros((4, 4), np.int32), np.zeros(0, np.int32)),
        name="empty",
    )
    scores = evaluator.result()
    back = InstanceScores.from_dict(json.loads(json.dumps(scores.to_dict())))
    assert back.to_dict() == scores.to_dict() and back.per_class == scores.per_class
    assert np.isnan(back.per_image[1].aji)  # null in the JSON, NaN again
