"""A label image's objects take their class from the mask; those mostly background or ignored are dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.io import instance_file, read_label_image
from pixelwise.instances.truth import instances_from_labels, truth_instances

CLASSES = ClassSpec(("background", "cell", "debris"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))
CLASSES_NUCLEI = ClassSpec(("background", "nucleus"), ((0, 0, 0), (255, 0, 0)))


def test_each_object_takes_the_class_most_of_its_pixels_have() -> None:
    labels = np.zeros((4, 10), np.int32)
    labels[:, 0:3] = 7  # mostly cell
    labels[:, 4:6] = 9  # debris
    labels[:, 7:9] = 12  # background in the mask: not an object of any class
    labels[0, 9] = 13  # ignored in the mask
    mask = np.zeros((4, 10), np.uint8)
    mask[:, 0:3] = 1
    mask[0, 0] = 2
    mask[:, 4:6] = 2
    mask[0, 9] = 255
    objects = instances_from_labels(labels, mask, CLASSES)
    assert objects.classes.tolist() == [1, 2]
    assert set(np.unique(objects.labels).tolist()) == {0, 1, 2}
    assert (objects.labels[:, 0:3] == 1).all() and (objects.labels[:, 7:] == 0).all()
    empty = instances_from_labels(np.zeros((2, 2), np.int32), np.zeros((2, 2), np.uint8), CLASSES)
    assert empty.count == 0


def test_the_nuclei_builtin_ships_its_125_nuclei_beside_the_masks(tmp_path: Path) -> None:
    from pixelwise.data.builtin import export_builtin
    from pixelwise.data.io import read_mask

    root = export_builtin("nuclei", tmp_path / "nuclei")
    numbers: set[int] = set()
    for mask_path in sorted(root.glob("*/masks/*.png")):
        labels_path = instance_file(mask_path)
        assert labels_path is not None
        labels = read_label_image(labels_path)
        assert np.array_equal(labels > 0, read_mask(mask_path, CLASSES_NUCLEI) == 1)
        numbers |= set(np.unique(labels).tolist()) - {0}
    assert len(numbers) == 125
    objects, from_file = truth_instances(mask_path, read_mask(mask_path, CLASSES_NUCLEI), CLASSES_NUCLEI)
    assert from_file and objects.count == len(np.unique(labels)) - 1
