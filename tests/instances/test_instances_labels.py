"""From a class mask to objects: components, the split of touching objects, specks, classes, probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.labels import Instances, instance_labels
from pixelwise.instances.scores import InstanceEvaluator

CLASSES = ClassSpec(("background", "cell", "debris"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))


def touching_discs(seed: int, *, isolated: int, pairs: int, size: int = 256) -> Instances:
    """Discs of radius 6-9 px: ``isolated`` ones apart from all others, and ``pairs`` of discs that touch
    (centres 1.6-1.95 radii apart: one blob in the mask, with a neck)."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    placed: list[tuple[float, float, float]] = []

    def free(row: float, column: float, radius: float) -> bool:
        inside = radius + 1 <= row <= size - radius - 2 and radius + 1 <= column <= size - radius - 2
        return inside and all(np.hypot(row - r, column - c) > radius + other + 4 for r, c, other in placed)

    groups = [1] * isolated + [2] * pairs
    rng.shuffle(groups)
    for members in groups:
        while True:
            radius = rng.uniform(6, 9)
            row, column = rng.uniform(0, size, 2)
            if members == 1 and free(row, column, radius):
                discs = [(row, column, radius)]
                break
            if members == 2:
                other = rng.uniform(6, 9)
                angle = rng.uniform(0, 2 * np.pi)
                distance = rng.uniform(0.8, 0.975) * (radius + other)
                second = (row + distance * np.sin(angle), column + distance * np.cos(angle), other)
                if free(row, column, radius) and free(*second):
                    discs = [(row, column, radius), second]
                    break
        for disc_row, disc_column, disc_radius in discs:
            placed.append((disc_row, disc_column, disc_radius))
            labels[(rows - disc_row) ** 2 + (columns - disc_column) ** 2 <= disc_radius**2] = len(placed)
    return Instances(labels, np.ones(len(placed), np.int32))


@pytest.mark.parametrize("seed", range(3))
def test_the_split_counts_touching_discs_where_plain_components_miss_a_third(seed: int) -> None:
    # 60 discs: 20 alone and 20 touching pairs, so the mask holds 40 blobs
    truth = touching_discs(seed, isolated=20, pairs=20)
    mask = (truth.labels > 0).astype(np.uint8)
    plain = instance_labels(mask, CLASSES, split=False)
    split = instance_labels(mask, CLASSES)
    assert plain.count == 40  # a third missed
    assert abs(split.count - 60) <= 0.05 * 60
    evaluator = InstanceEvaluator(CLASSES)
    evaluator.add(split, truth)
    assert evaluator.result().pq > 0.85  # split along the necks, not just counted right


def test_objects_are_numbered_class_by_class_in_raster_order_and_specks_dropped() -> None:
    mask = np.zeros((12, 12), np.uint8)
    mask[6:10, 1:5] = 1  # a cell, lower
    mask[1:4, 1:4] = 1  # a cell, upper: numbered first
    mask[1:5, 7:11] = 2  # debris
    mask[10, 10] = 1  # a speck
    mask[0, 11] = 255  # ignored
    found = instance_labels(mask, CLASSES, min_size=4)
    assert found.count == 3
    assert found.classes.tolist() == [1, 1, 2]
    assert found.labels[2, 2] == 1 and found.labels[7, 2] == 2 and found.labels[2, 8] == 3
    assert found.labels[10, 10] == 0 and found.labels[0, 11] == 0
    assert found.labels.dtype == np.int32
    assert instance_labels(mask, CLASSES, min_size=0).count == 4
    assert instance_labels(mask, CLASSES, object_classes=[2]).classes.tolist() == [2]
    assert found.counts(3).tolist() == [0, 2, 1]
    assert found.areas().tolist() == [9, 16, 16]


def test_a_foreground_probability_parts_objects_where_it_dips() -> None:
    # two squares joined by a wide bridge: the distance alone sees one object, the probability's dip two
    mask = np.zeros((20, 40), np.uint8)
    mask[2:18, 2:38] = 1
    probability = np.ones(mask.shape, np.float32)
    probability[:, 19:21] = 0.1
    assert instance_labels(mask, CLASSES).count == 1
    assert instance_labels(mask, CLASSES, probability=probability).count == 2
    # per-class probabilities (K, H, W) as a network gives them
    stacked = np.stack([1 - probability, probability, np.zeros_like(probability)])
    assert instance_labels(mask, CLASSES, probability=stacked).count == 2


def test_bad_input_is_one_line() -> None:
    with pytest.raises(PixelwiseError, match="differ in size"):
        instance_labels(np.ones((4, 4), np.uint8), CLASSES, probability=np.ones((4, 5)))
    with pytest.raises(PixelwiseError, match="min_size"):
        instance_labels(np.ones((4, 4), np.uint8), CLASSES, min_size=-1)
    with pytest.raises(PixelwiseError, match="object class 0"):
        instance_labels(np.ones((4, 4), np.uint8), CLASSES, object_classes=[0])
    with pytest.raises(PixelwiseError, match=r"\(H, W\)"):
        instance_labels(np.ones((4, 4, 3), np.uint8), CLASSES)
