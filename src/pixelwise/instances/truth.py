"""Where the objects of a scored pair come from: label images beside the masks, else the masks themselves.

The truth's objects are ``instances/<stem>.*`` beside its ``masks/`` (each object the class most of its
pixels have in the mask); without one, each class's connected components (touching objects then count as
one: the caller says so). A prediction's objects are ``PRED/instances/<stem>.tif`` when ``--instances``
wrote them, else found in the predicted mask by ``instance_labels`` (split, default ``min_size``), with the
probabilities of ``PRED/probabilities/<stem>.npy`` where ``predict --save-probs`` wrote them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.io import (
    INSTANCES_FOLDER,
    LABEL_SUFFIXES,
    PROBABILITY_FOLDER,
    instance_file,
    read_label_image,
)
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
    prediction_path: str | os.PathLike[str], mask: np.ndarray, classes: ClassSpec, *, folder: str | os.PathLike[str]
) -> tuple[Instances, str]:
    """The predicted objects of the mask ``folder/<name>.png``, and where they came from: ``"labels"``
    (``folder/instances/<name>.tif``, as ``--instances`` writes it), ``"probabilities"`` (the mask split with
    ``folder/probabilities/<name>.npy``, as ``predict --save-probs`` writes them, when they fit the mask and
    the classes) or ``"mask"`` (the mask alone). ``<name>`` may hold sub-folders, as a job's outputs do."""
    path, root = Path(prediction_path), Path(folder)
    name = path.relative_to(root).with_suffix("")
    for suffix in LABEL_SUFFIXES:
        labels_path = root / INSTANCES_FOLDER / f"{name}{suffix}"
        if labels_path.is_file():
            return instances_from_labels(_sized(labels_path, mask), mask, classes), "labels"
    probabilities_path = root / PROBABILITY_FOLDER / f"{name}.npy"
    if probabilities_path.is_file():
        try:
            probabilities = np.load(probabilities_path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise PixelwiseError(
                f"{probabilities_path}: not a numpy file ({error}); remove it or predict again"
            ) from None
        if probabilities.shape == (classes.num_classes, *mask.shape):
            return instance_labels(mask, classes, probability=np.asarray(probabilities, np.float32)), "probabilities"
    return instance_labels(mask, classes), "mask"


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
    ``predicted_instances`` in ``prediction_folder``) and scored; ``notes()`` says where objects came from
    the masks."""

    def __init__(self, classes: ClassSpec, *, prediction_folder: str | os.PathLike[str]) -> None:
        from pixelwise.instances.scores import InstanceEvaluator

        self.classes = classes
        self.prediction_folder = Path(prediction_folder)
        self.evaluator = InstanceEvaluator(classes)
        self.truth_from_masks = 0
        self.predictions_from: dict[str, int] = {}
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
        predicted_objects, source = predicted_instances(
            prediction_path, prediction, self.classes, folder=self.prediction_folder
        )
        self.truth_from_masks += not from_file
        self.predictions_from[source] = self.predictions_from.get(source, 0) + 1
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
        found = self.predictions_from.get("mask", 0) + self.predictions_from.get("probabilities", 0)
        if found:
            with_probabilities = self.predictions_from.get("probabilities", 0)
            notes.append(
                f"note: {found} of {self.images} predictions have no instances/<stem>.tif; their objects are "
                "found in the predicted masks (connected components, touching ones split"
                + (f"; {with_probabilities} with their probabilities/<stem>.npy)" if with_probabilities else ")")
            )
        return notes
