"""Where the objects of a scored pair come from: label images beside the masks, else the masks themselves.

The truth's objects are ``instances/<stem>.*`` beside its ``masks/`` (each object the class most of its
pixels have in the mask); without one, each class's connected components (touching objects then count as
one: the caller says so). A prediction's objects are ``PRED/instances/<stem>.tif`` when ``--instances``
wrote them, else found in the predicted mask by ``instance_labels`` (split, default ``min_size``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.io import instance_file, read_label_image
from pixelwise.instances.labels import Instances, instance_labels


def instances_from_labels(labels: np.ndarray, mask: np.ndarray, classes: ClassSpec) -> Instances:
    """The objects of a label image (H, W), each of the class most of its pixels have in ``mask``; objects
    mostly background or ignored are dropped, and the rest renumbered 1..N in the order of their labels."""
    valid = (mask != classes.ignore_index) & (mask < classes.num_classes)
    present = np.unique(labels[labels > 0])
    if not present.size:
        return Instances(np.zeros(labels.shape, np.int32), np.zeros(0, np.int32))
    index = np.searchsorted(present, labels)  # position of each label among the present ones
    on_object = (labels > 0) & valid
    votes = np.zeros((present.size, classes.num_classes), np.int64)
    np.add.at(votes, (index[on_object], mask[on_object].astype(np.int64)), 1)
    majority = votes.argmax(axis=1)
    kept = (majority > 0) & (votes.max(axis=1) > 0)
    table = np.zeros(int(present.max()) + 1, np.int32)
    table[present[kept]] = np.arange(1, int(kept.sum()) + 1, dtype=np.int32)
    return Instances(table[labels], majority[kept].astype(np.int32))


def truth_instances(mask_path: str | os.PathLike[str], mask: np.ndarray, classes: ClassSpec) -> tuple[Instances, bool]:
    """The true objects of one mask, and whether they came from a label image (else from the mask's
    connected components)."""
    labels_path = instance_file(mask_path)
    if labels_path is None:
        return instance_labels(mask, classes, split=False, min_size=0), False
    return instances_from_labels(_sized(labels_path, mask), mask, classes), True


def predicted_instances(
    prediction_path: str | os.PathLike[str], mask: np.ndarray, classes: ClassSpec
) -> tuple[Instances, bool]:
    """The predicted objects of one predicted mask, and whether they came from a label image (else split
    out of the mask by ``instance_labels`` with its defaults)."""
    labels_path = instance_file(prediction_path)
    if labels_path is None:
        return instance_labels(mask, classes), False
    return instances_from_labels(_sized(labels_path, mask), mask, classes), True


def _sized(path: Path, mask: np.ndarray) -> np.ndarray:
    labels = read_label_image(path)
    if labels.shape != mask.shape:
        raise PixelwiseError(
            f"{path}: {labels.shape[1]}x{labels.shape[0]} labels for a {mask.shape[1]}x{mask.shape[0]} mask; "
            "give the label image of the same image"
        )
    return labels


class InstanceScoring:
    """``evaluate --instances``: each scored pair's objects found (``truth_instances``,
    ``predicted_instances``) and scored; ``notes()`` says where objects came from the masks."""

    def __init__(self, classes: ClassSpec) -> None:
        from pixelwise.instances.scores import InstanceEvaluator

        self.classes = classes
        self.evaluator = InstanceEvaluator(classes)
        self.truth_from_masks = 0
        self.predictions_from_masks = 0
        self.images = 0

    def add(
        self,
        prediction_path: str | os.PathLike[str],
        prediction: np.ndarray,
        truth_path: str | os.PathLike[str],
        truth: np.ndarray,
    ) -> None:
        """One pair: the predicted and the true mask (H, W) and the files they were read from."""
        true_objects, from_file = truth_instances(truth_path, truth, self.classes)
        predicted_objects, predicted_from_file = predicted_instances(prediction_path, prediction, self.classes)
        self.truth_from_masks += not from_file
        self.predictions_from_masks += not predicted_from_file
        self.images += 1
        ignore = truth == self.classes.ignore_index
        self.evaluator.add(predicted_objects, true_objects, ignore=ignore, name=Path(prediction_path).name)

    def notes(self) -> list[str]:
        notes = []
        if self.truth_from_masks:
            notes.append(
                f"note: {self.truth_from_masks} of {self.images} truth masks have no instances/<stem> label image "
                "beside masks/; their objects are the masks' connected components (touching objects count as one)"
            )
        if self.predictions_from_masks:
            notes.append(
                f"note: {self.predictions_from_masks} of {self.images} predictions have no instances/<stem>.tif; "
                "their objects are found in the predicted masks (connected components, touching ones split)"
            )
        return notes
