"""Object scores in a comparison: when the test truth has instance label images, each method's objects.

The truth's objects are the dataset's ``instances/<stem>.*`` beside ``masks/`` (``instances.truth``); a test
image without one is scored with its mask's connected components, and the report says how many. Each
method's objects are found in its clean prediction the same way for every method (``instance_labels``:
each class's components, touching objects split on the distance transform, the default ``min_size``), so
the section compares the masks' fitness for counting, not a method's own object finder. Scored on the clean
test split only (``InstanceEvaluator``: PQ, F1 at IoU 0.5, AJI, count error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pixelwise.comparison.held_out import HeldOutImages
    from pixelwise.data.classes import ClassSpec
    from pixelwise.instances import InstanceEvaluator, Instances


class ObjectScoring:
    """The test truth's objects (read once per image and kept when the test images are), and one
    ``InstanceEvaluator`` per method (``evaluator``)."""

    def __init__(self, test: HeldOutImages, classes: ClassSpec) -> None:
        from pixelwise.instances import instance_file

        self.test = test
        self.classes = classes
        self.mask_paths = [test.folder.mask_paths[index] for index in range(len(test))]
        # test images whose truth has a label image of its objects; 0: no object scores
        self.with_labels = sum(instance_file(path) is not None for path in self.mask_paths)
        self._truths: dict[int, Instances] = {}

    @property
    def active(self) -> bool:
        return self.with_labels > 0

    def evaluator(self) -> InstanceEvaluator:
        from pixelwise.instances import InstanceEvaluator

        return InstanceEvaluator(self.classes)

    def add(self, evaluator: InstanceEvaluator, index: int, labels: np.ndarray, truth: np.ndarray) -> None:
        """Test image ``index``: a method's clean prediction ``labels`` (H, W) and the true mask ``truth``."""
        from pixelwise.instances import instance_labels

        predicted = instance_labels(np.asarray(labels), self.classes)
        ignore = truth == self.classes.ignore_index
        evaluator.add(predicted, self._truth(index, truth), ignore=ignore, name=self.mask_paths[index].stem)

    def _truth(self, index: int, mask: np.ndarray) -> Instances:
        from pixelwise.instances.truth import truth_instances

        if index in self._truths:
            return self._truths[index]
        objects, _ = truth_instances(self.mask_paths[index], mask, self.classes)
        if self.test.cached:  # the test images are held in memory: their objects may be too
            self._truths[index] = objects
        return objects
