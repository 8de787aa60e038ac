"""The boundary class: a ring around each truth object, learnt as one more class, so touching objects part.

A network trained on masks where touching nuclei are one blob predicts one blob. Given a thin ring of a
class of its own around every object (the pixels of the object within ``BOUNDARY_WIDTH`` of another object
or of the background), it learns to draw the line between them; at prediction time the object classes'
components are the objects' interiors, and each boundary pixel is given back to the object it borders
(``grow_into_boundary``, in ``instance_labels``) or, in a class mask, to the class of the nearest object
pixel (``fold_boundary``).

The class is recognised by its name, ``BOUNDARY_NAME``, as the last class of a checkpoint's classes: the
name is what travels with the model everywhere (checkpoints, ONNX metadata, the web service).
"""

from __future__ import annotations

import numpy as np

from pixelwise.data.classes import ClassSpec, default_colors
from pixelwise.errors import PixelwiseError

BOUNDARY_NAME = "object boundary"
# pixels of the ring inside each object: two pixels part two touching objects by four
BOUNDARY_WIDTH = 2


def boundary_index(classes: ClassSpec) -> int | None:
    """The index of the boundary class (the last class, named ``BOUNDARY_NAME``), or None."""
    return classes.num_classes - 1 if classes.names[-1] == BOUNDARY_NAME and classes.num_classes > 2 else None


def with_boundary_class(classes: ClassSpec) -> ClassSpec:
    """``classes`` plus the boundary class, last, in a colour no class has."""
    if BOUNDARY_NAME in classes.names:
        raise PixelwiseError(
            f"the classes already have a class named {BOUNDARY_NAME!r}; rename it, or train without boundary_class"
        )
    if classes.num_classes < 2:
        raise PixelwiseError("boundary_class needs a background and at least one object class")
    taken = set(classes.colors)
    color = next(candidate for candidate in default_colors(256)[classes.num_classes :] if candidate not in taken)
    return ClassSpec((*classes.names, BOUNDARY_NAME), (*classes.colors, color), classes.ignore_index)


def add_boundary(mask: np.ndarray, objects: np.ndarray, *, boundary: int, width: int = BOUNDARY_WIDTH) -> np.ndarray:
    """A training mask (H, W) with the boundary class on the pixels of each object within ``width`` pixels
    (a disc) of a pixel not of that object: the background, another object, ignored pixels. ``objects``:
    (H, W) int, 0 off objects. The image's border is no boundary (an object cut by it goes on outside)."""
    from scipy import ndimage
    from skimage.morphology import disk

    if objects.shape != mask.shape:
        raise ValueError(f"objects {objects.shape} and mask {mask.shape} differ in size")
    footprint = disk(width).astype(bool)
    highest = ndimage.maximum_filter(objects, footprint=footprint, mode="nearest")
    lowest = ndimage.minimum_filter(objects, footprint=footprint, mode="nearest")
    ring = (objects > 0) & ((highest != objects) | (lowest != objects))
    out = mask.copy()
    out[ring] = boundary
    return out


def grow_into_boundary(labels: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """Object labels (H, W) int32 grown over the boundary pixels (H, W) bool they touch, each pixel to the
    object nearest along the boundary (a watershed on the distance to the objects); boundary pixels that
    touch no object stay 0."""
    from scipy import ndimage
    from skimage import segmentation

    if not boundary.any() or not labels.any():
        return labels
    distance = ndimage.distance_transform_edt(labels == 0)
    grown = segmentation.watershed(distance, labels, mask=(labels > 0) | boundary)
    return grown.astype(np.int32)


def fold_boundary(labels: np.ndarray, classes: ClassSpec) -> tuple[np.ndarray, ClassSpec]:
    """A class mask (H, W) of a model trained with the boundary class, as a mask of the object classes:
    each boundary pixel takes the class of the nearest object pixel (the only object class when no object
    pixel is left). Classes without the boundary class come back unchanged (and nothing is imported: the
    deploy path without SciPy writes every mask through here)."""
    boundary = boundary_index(classes)
    if boundary is None:
        return labels, classes
    from scipy import ndimage

    folded_classes = without_boundary(classes)
    on_boundary = labels == boundary
    if not on_boundary.any():
        return labels, folded_classes
    objects = (labels > 0) & (labels < boundary)
    out = labels.copy()
    if objects.any():
        _, (rows, columns) = ndimage.distance_transform_edt(~objects, return_indices=True)
        out[on_boundary] = labels[rows[on_boundary], columns[on_boundary]]
    else:
        out[on_boundary] = 1 if boundary == 2 else 0
    return out, folded_classes


def without_boundary(classes: ClassSpec) -> ClassSpec:
    """``classes`` less the boundary class: the user's classes, which masks, overlays and tables name."""
    if boundary_index(classes) is None:
        return classes
    return ClassSpec(classes.names[:-1], classes.colors[:-1], classes.ignore_index)


def fold_boundary_probabilities(probabilities: np.ndarray, classes: ClassSpec) -> np.ndarray:
    """(K, h, W) probabilities of a model trained with the boundary class as (K - 1, h, W) of the object
    classes: the boundary's share goes to the object classes in proportion to their own at that pixel (all
    of it to the one object class of a two-class task), so each pixel still sums to 1. Pixel by pixel, so a
    band of rows folds alone. Classes without the boundary class come back unchanged."""
    boundary = boundary_index(classes)
    if boundary is None:
        return probabilities
    folded = np.array(probabilities[:boundary], dtype=np.float32)
    objects = folded[1:]
    total = objects.sum(axis=0, keepdims=True)
    # where no object class has any probability the share is split evenly
    share = np.divide(objects, total, out=np.full_like(objects, 1 / objects.shape[0]), where=total > 0)
    objects += share * np.asarray(probabilities[boundary], dtype=np.float32)
    return folded
