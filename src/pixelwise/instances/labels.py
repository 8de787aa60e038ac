"""From a class mask to objects: one label per object, its class, touching objects split apart.

A class mask says *what* each pixel is; counting and measuring need *which object* it belongs to. Each
object class is cut into connected components, and a component that holds several touching objects is
split by a marker-controlled watershed: markers at the maxima of the distance to the background (the
centres of round objects; a foreground probability, when given, deepens the valleys between them), flooded
within the component. ``split=False`` gives the plain components; ``min_size`` drops specks.

The scikit-image / SciPy calls are all in ``object_labels``, so that a faster kernel (OpenCV's connected
components and watershed) can replace that one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.boundary import boundary_index, grow_into_boundary

# objects smaller than this (pixels) are specks: noise of a threshold, not objects
DEFAULT_MIN_SIZE = 16
# a distance maximum is a marker (an object's centre) only when it stands this many pixels above the
# saddle to its neighbour: two touching discs meet in a neck narrower than either, a ragged edge does not.
# 1 over-splits the ragged edges of a threshold's mask, 2 leaves overlapping discs of unequal size whole
# (tests/instances: touching discs; docs/results.md: the nuclei)
SPLIT_HEIGHT = 1.5


@dataclass(frozen=True)
class Instances:
    """The objects of one image: ``labels`` (H, W) int32, 0 where there is no object and 1..N one per
    object; ``classes`` (N,) int32, the class index of object ``i + 1``."""

    labels: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        if self.labels.ndim != 2 or self.labels.dtype != np.int32:
            raise ValueError(f"labels must be (H, W) int32, got {self.labels.dtype} {self.labels.shape}")
        if self.classes.ndim != 1:
            raise ValueError(f"classes must be (N,), got shape {self.classes.shape}")
        if int(self.labels.max(initial=0)) > len(self.classes) or int(self.labels.min(initial=0)) < 0:
            raise ValueError(f"labels must lie in 0..{len(self.classes)}, one class per label")

    @property
    def count(self) -> int:
        return len(self.classes)

    def counts(self, num_classes: int) -> np.ndarray:
        """(num_classes,) int64: how many objects of each class."""
        return np.bincount(self.classes.astype(np.int64), minlength=num_classes)[:num_classes]

    def areas(self) -> np.ndarray:
        """(N,) int64: the pixels of each object."""
        return np.bincount(self.labels.ravel(), minlength=self.count + 1)[1:].astype(np.int64)


def instance_labels(
    mask: np.ndarray,
    classes: ClassSpec | None = None,
    *,
    probability: np.ndarray | None = None,
    split: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
    object_classes: Sequence[int] | None = None,
) -> Instances:
    """The objects of a class mask (H, W): each object class's connected components (8-connected), touching
    objects split unless ``split`` is False, objects of fewer than ``min_size`` pixels dropped.

    ``object_classes``: the classes that are objects; default every class but 0 (the background) and the
    ignore index. ``probability``: (H, W) the foreground probability, or (K, H, W) per class (a network's
    softmax), used by the split. With ``classes`` whose last class is the boundary class
    (``instances.boundary``), boundary pixels separate the objects and are then given to the object they
    border. Objects are numbered class by class, in raster order within a class.
    """
    if mask.ndim != 2:
        raise PixelwiseError(f"a class mask is (H, W); got shape {mask.shape}")
    if min_size < 0:
        raise PixelwiseError(f"min_size {min_size}: give a number of pixels, 0 or more")
    ignore = classes.ignore_index if classes is not None else 255
    boundary = boundary_index(classes) if classes is not None else None
    wanted = _object_classes(mask, classes, object_classes, ignore=ignore, boundary=boundary)
    labels = np.zeros(mask.shape, np.int32)
    object_class: list[np.ndarray] = []
    offset = 0
    for class_index in wanted:
        region = mask == class_index
        if not region.any():
            continue
        landscape = _class_probability(probability, class_index, mask.shape)
        pieces = object_labels(region, landscape=landscape, split=split, min_size=min_size)
        found = int(pieces.max())
        inside = pieces > 0
        labels[inside] = pieces[inside] + offset
        offset += found
        object_class.append(np.full(found, class_index, np.int32))
    found_classes = np.concatenate(object_class) if object_class else np.zeros(0, np.int32)
    if boundary is not None:
        labels = grow_into_boundary(labels, mask == boundary)
    return Instances(labels, found_classes)


def object_labels(region: np.ndarray, *, landscape: np.ndarray | None, split: bool, min_size: int) -> np.ndarray:
    """The kernel: (H, W) bool -> (H, W) int32 objects numbered 1..N in raster order (8-connected components,
    split by a watershed from the distance maxima unless ``split`` is False; pieces under ``min_size`` dropped).

    ``landscape``: (H, W) float in [0, 1], the foreground probability; where it dips between two objects the
    distance is scaled down with it, so the markers and the watershed lines follow the dip.
    """
    from scipy import ndimage
    from skimage import measure, morphology, segmentation

    components = measure.label(region, connectivity=2)
    if min_size > 1:
        components = _drop_small(components, min_size)
    if split and components.any():
        distance = ndimage.distance_transform_edt(components > 0)
        if landscape is not None:
            distance = distance * np.clip(landscape, 0.0, 1.0)
        markers = measure.label(morphology.h_maxima(distance, SPLIT_HEIGHT), connectivity=2)
        # a component without a marker (too flat or too small to have a peak) keeps its own
        unmarked = np.setdiff1d(np.unique(components), np.unique(components[markers > 0]))
        unmarked = unmarked[unmarked > 0]
        if unmarked.size:
            extra = np.isin(components, unmarked)
            markers[extra] = components[extra] + markers.max()
        components = segmentation.watershed(-distance, markers, mask=components > 0)
        if min_size > 1:
            components = _drop_small(components, min_size)
    relabelled, _, _ = segmentation.relabel_sequential(components)
    return _raster_order(relabelled.astype(np.int32))


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    areas = np.bincount(labels.ravel())
    small = areas < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def _raster_order(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..N by the raster position of each object's first pixel (repeatable numbering)."""
    flat = labels.ravel()
    present, first = np.unique(flat, return_index=True)
    keep = present > 0
    order = np.argsort(first[keep], kind="stable")
    table = np.zeros(int(present.max()) + 1 if present.size else 1, np.int32)
    table[present[keep][order]] = np.arange(1, order.size + 1, dtype=np.int32)
    return table[labels]


def _object_classes(
    mask: np.ndarray,
    classes: ClassSpec | None,
    chosen: Sequence[int] | None,
    *,
    ignore: int,
    boundary: int | None,
) -> list[int]:
    if chosen is not None:
        limit = classes.num_classes if classes is not None else None
        for value in chosen:
            if value in (0, ignore, boundary) or (limit is not None and not 0 < value < limit):
                raise PixelwiseError(f"object class {value}: not a class of objects; give classes 1..K-1")
        return sorted(set(int(value) for value in chosen))
    if classes is not None:
        return [index for index in range(1, classes.num_classes) if index != boundary]
    return [int(value) for value in np.unique(mask) if value not in (0, ignore)]


def _class_probability(probability: np.ndarray | None, class_index: int, shape: tuple[int, ...]) -> np.ndarray | None:
    if probability is None:
        return None
    if probability.ndim == 3:
        if not class_index < probability.shape[0]:
            raise PixelwiseError(f"probabilities have {probability.shape[0]} classes; class {class_index} has none")
        probability = probability[class_index]
    if probability.shape != shape:
        raise PixelwiseError(f"probability map {probability.shape} and mask {shape} differ in size; give one per pixel")
    return np.asarray(probability, dtype=np.float32)
