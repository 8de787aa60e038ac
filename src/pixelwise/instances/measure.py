"""Measuring objects: one row per object (scikit-image's ``regionprops_table``) and counts per image and class.

Columns of ``ObjectTable`` (``OBJECT_COLUMNS``, then the mean intensity of each band): ``image``, ``label``
(the value in the label image), ``class`` (its name), ``area`` (pixels), ``centroid_row``,
``centroid_column``, ``bbox_top``, ``bbox_left``, ``bbox_bottom``, ``bbox_right`` (bottom and right one past
the object, as in numpy slices), ``eccentricity`` (0 a disc, towards 1 a line), ``solidity`` (area over
convex hull area: low for ragged or merged objects); ``mean_intensity`` for a grey image,
``mean_intensity_band1`` ... for several bands. Intensities are in the units of the image given: pass the
pixel values as stored (not ``read_image``'s per-image scaling to [0, 1]) to compare them across images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.boundary import boundary_index
from pixelwise.instances.labels import DEFAULT_MIN_SIZE, Instances, instance_labels

OBJECT_COLUMNS = (
    "image",
    "label",
    "class",
    "area",
    "centroid_row",
    "centroid_column",
    "bbox_top",
    "bbox_left",
    "bbox_bottom",
    "bbox_right",
    "eccentricity",
    "solidity",
)
SUMMARY_COLUMNS = ("image", "class", "count", "total_area")
# regionprops_table's columns -> ours
_PROPERTIES = {
    "label": "label",
    "area": "area",
    "centroid-0": "centroid_row",
    "centroid-1": "centroid_column",
    "bbox-0": "bbox_top",
    "bbox-1": "bbox_left",
    "bbox-2": "bbox_bottom",
    "bbox-3": "bbox_right",
    "eccentricity": "eccentricity",
    "solidity": "solidity",
}


@dataclass(frozen=True)
class ObjectTable:
    """The measurements of one image's objects: ``columns`` by name, each (N,), in ``OBJECT_COLUMNS`` order
    and then the intensity columns."""

    image: str
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["label"])

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def rows(self) -> Iterator[list[object]]:
        """Each object's values in ``header`` order, as plain Python numbers and strings."""
        for index in range(len(self)):
            yield [_plain(values[index]) for values in self.columns.values()]


@dataclass(frozen=True)
class ClassCount:
    """How many objects of one class an image has, and their total area (pixels)."""

    image: str
    class_name: str
    count: int
    total_area: int

    def row(self) -> list[object]:
        return [self.image, self.class_name, self.count, self.total_area]


def measure_objects(
    instances: Instances, classes: ClassSpec | None = None, *, image: np.ndarray | None = None, name: str = ""
) -> ObjectTable:
    """One row per object of ``instances``; ``image`` (H, W) or (H, W, C) gives the mean intensity per band."""
    from skimage import measure

    labels = instances.labels
    properties = ["label", "area", "centroid", "bbox", "eccentricity", "solidity"]
    intensity = None
    if image is not None:
        intensity = np.asarray(image)
        if intensity.shape[:2] != labels.shape:
            raise ValueError(f"{name}: image {intensity.shape} and objects {labels.shape} differ in size")
        if intensity.ndim == 3 and intensity.shape[2] == 1:
            intensity = intensity[..., 0]
        properties.append("intensity_mean")
    raw = measure.regionprops_table(labels, intensity_image=intensity, properties=properties)
    found = raw["label"].astype(np.int64)
    columns: dict[str, np.ndarray] = {"image": np.full(len(found), name, dtype=object)}
    columns["label"] = found
    class_indices = instances.classes[found - 1] if len(found) else np.zeros(0, np.int32)
    columns["class"] = np.array([_class_name(classes, index) for index in class_indices], dtype=object)
    for key, column in _PROPERTIES.items():
        if key != "label":
            columns[column] = raw[key]
    columns["area"] = columns["area"].astype(np.int64)
    for key in ("bbox_top", "bbox_left", "bbox_bottom", "bbox_right"):
        columns[key] = columns[key].astype(np.int64)
    if intensity is not None:
        if intensity.ndim == 2:
            columns["mean_intensity"] = raw["intensity_mean"]
        else:
            for band in range(intensity.shape[2]):
                columns[f"mean_intensity_band{band + 1}"] = raw[f"intensity_mean-{band}"]
    return ObjectTable(name, columns)


def count_objects(instances: Instances, classes: ClassSpec | None = None, *, name: str = "") -> list[ClassCount]:
    """One ``ClassCount`` per object class (with ``classes``: every class but the background, the boundary
    class and classes of no object, counted 0 where absent, so an image without objects says so)."""
    counts = np.bincount(instances.classes, minlength=1) if instances.count else np.zeros(1, np.int64)
    areas = np.bincount(instances.classes, weights=instances.areas(), minlength=1) if instances.count else counts
    if classes is not None:
        boundary = boundary_index(classes)
        wanted = [index for index in range(1, classes.num_classes) if index != boundary]
    else:
        wanted = [int(index) for index in np.flatnonzero(counts)]
    return [
        ClassCount(
            name,
            _class_name(classes, index),
            int(counts[index]) if index < len(counts) else 0,
            int(areas[index]) if index < len(areas) else 0,
        )
        for index in wanted
    ]


def _class_name(classes: ClassSpec | None, index: int) -> str:
    if classes is not None and 0 <= index < classes.num_classes:
        return classes.names[index]
    return str(int(index))


def _plain(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass(frozen=True)
class ImageObjects:
    """One image's objects, their rows and their counts: what an ``--instances`` output writes for it."""

    instances: Instances
    table: ObjectTable
    counts: list[ClassCount]


def image_objects(
    labels: np.ndarray,
    classes: ClassSpec,
    *,
    name: str,
    probabilities: np.ndarray | None = None,
    pixels: np.ndarray | None = None,
    split: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
) -> ImageObjects:
    """A class mask (H, W) to objects (``instance_labels``), measured on ``pixels`` (H, W[, C]) and counted.

    ``probabilities``: (K, H, W) a network's, for the split; with a boundary class among ``classes`` its
    pixels go back to the objects they border. The sink of ``--instances`` writes ``instances.labels``
    (``io.write_label_image``) and hands ``table`` and ``counts`` to an ``io.ObjectsWriter``.
    """
    found = instance_labels(labels, classes, probability=probabilities, split=split, min_size=min_size)
    table = measure_objects(found, classes, image=pixels, name=name)
    return ImageObjects(found, table, count_objects(found, classes, name=name))
