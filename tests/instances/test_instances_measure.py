"""One row per object with what scikit-image measures, and the counts per image and class."""

from __future__ import annotations

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.boundary import with_boundary_class
from pixelwise.instances.labels import Instances
from pixelwise.instances.measure import OBJECT_COLUMNS, count_objects, image_objects, measure_objects

CLASSES = ClassSpec(("background", "cell", "debris"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))


def two_objects() -> Instances:
    labels = np.zeros((10, 12), np.int32)
    labels[2:4, 1:9] = 1  # a 2 x 8 bar: elongated
    labels[5:9, 5:9] = 2  # a 4 x 4 square
    return Instances(labels, np.array([1, 2], np.int32))


def test_each_object_is_a_row_with_its_class_size_place_and_shape() -> None:
    image = np.zeros((10, 12, 3), np.float32)
    image[..., 1] = 0.5
    image[5:9, 5:9, 0] = 1.0
    table = measure_objects(two_objects(), CLASSES, image=image, name="a.png")
    assert table.header[: len(OBJECT_COLUMNS)] == OBJECT_COLUMNS
    assert table.header[len(OBJECT_COLUMNS) :] == (
        "mean_intensity_band1",
        "mean_intensity_band2",
        "mean_intensity_band3",
    )
    bar, square = list(table.rows())
    assert bar[:4] == ["a.png", 1, "cell", 16] and square[:4] == ["a.png", 2, "debris", 16]
    assert (bar[4], bar[5]) == (2.5, 4.5)  # centroid row, column
    assert bar[6:10] == [2, 1, 4, 9]  # top, left, bottom, right (one past)
    assert bar[10] > 0.9 and square[10] == 0.0  # eccentricity: a bar, a square
    assert square[11] == 1.0  # solidity of a convex object
    assert square[12:] == [1.0, 0.5, 0.0] and bar[12:] == [0.0, 0.5, 0.0]


def test_a_grey_image_gives_one_intensity_column_and_no_image_none() -> None:
    grey = measure_objects(two_objects(), CLASSES, image=np.ones((10, 12, 1)), name="a")
    assert grey.header[-1] == "mean_intensity"
    assert measure_objects(two_objects(), CLASSES).header == OBJECT_COLUMNS
    assert len(measure_objects(Instances(np.zeros((3, 3), np.int32), np.zeros(0, np.int32)), CLASSES)) == 0


def test_counts_name_every_object_class_even_without_objects() -> None:
    counts = count_objects(two_objects(), CLASSES, name="a")
    assert [(count.class_name, count.count, count.total_area) for count in counts] == [
        ("cell", 1, 16),
        ("debris", 1, 16),
    ]
    empty = Instances(np.zeros((3, 3), np.int32), np.zeros(0, np.int32))
    assert [count.count for count in count_objects(empty, CLASSES, name="b")] == [0, 0]
    # the boundary class is no class of objects
    with_boundary = with_boundary_class(CLASSES)
    assert [count.class_name for count in count_objects(empty, with_boundary)] == ["cell", "debris"]


def test_one_call_gives_an_images_objects_rows_and_counts() -> None:
    labels = np.zeros((10, 12), np.uint8)
    labels[2:6, 2:6] = 1
    labels[2:6, 6:10] = 3  # the boundary class: given back to the object it borders
    probabilities = np.zeros((4, 10, 12), np.float32)
    probabilities[1] = 1.0
    found = image_objects(
        labels, with_boundary_class(CLASSES), name="x", probabilities=probabilities, pixels=np.ones((10, 12))
    )
    assert found.instances.count == 1 and len(found.table) == 1
    assert next(iter(found.table.rows()))[:4] == ["x", 1, "cell", 32]
    assert [(count.class_name, count.count) for count in found.counts] == [("cell", 1), ("debris", 0)]
