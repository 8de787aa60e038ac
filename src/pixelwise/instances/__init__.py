"""Objects, not only pixels: instance labels from class masks, measurements, polygons and object scores.

Where things are:

- ``labels``: ``instance_labels(mask, classes, *, probability, split, min_size) -> Instances`` (an int32
  label image and the class of each object); the scikit-image kernel is ``object_labels``.
- ``boundary``: the boundary class (training trick for touching objects): ``with_boundary_class``,
  ``add_boundary`` (training masks), ``fold_boundary`` (a predicted class mask back to the object classes),
  ``fold_boundary_probabilities``, ``without_boundary``.
- ``measure``: ``measure_objects -> ObjectTable`` (one row per object), ``count_objects -> [ClassCount]``;
  ``image_objects`` does all three for one image (what an ``--instances`` sink calls).
- ``io``: ``write_label_image`` / ``read_label_image`` (32-bit TIFF), ``instance_file`` (the truth's
  ``instances/`` beside ``masks/``), ``ObjectsWriter`` (``objects.csv`` from per-image part files).
- ``geojson``: ``object_features`` (a FeatureCollection; pixel or map coordinates), ``write_geojson``.
- ``coco``: ``image_annotations`` (one image's objects as COCO RLE annotations), ``coco_document``.

The ``--instances`` output of ``predict`` and ``classical`` is the sink ``pixelwise.sinks.objects``.
- ``polygons``: pixel-edge outlines with holes (``object_polygons``).
- ``scores``: ``InstanceEvaluator`` -> ``InstanceScores`` (PQ, SQ, RQ per class and mean, F1, AJI, counts).
- ``truth``: ``truth_instances`` / ``predicted_instances``: a folder's objects for ``evaluate --instances``.
"""

from __future__ import annotations

from pixelwise.instances.boundary import (
    BOUNDARY_NAME,
    BOUNDARY_WIDTH,
    add_boundary,
    boundary_index,
    fold_boundary,
    fold_boundary_probabilities,
    with_boundary_class,
    without_boundary,
)
from pixelwise.instances.coco import CocoImage, coco_document, image_annotations
from pixelwise.instances.geojson import object_features, write_geojson
from pixelwise.instances.io import ObjectsWriter, instance_file, read_label_image, write_label_image
from pixelwise.instances.labels import DEFAULT_MIN_SIZE, Instances, instance_labels, object_labels
from pixelwise.instances.measure import (
    ClassCount,
    ImageObjects,
    ObjectTable,
    count_objects,
    image_objects,
    measure_objects,
)
from pixelwise.instances.scores import ClassInstanceScores, ImageInstanceScores, InstanceEvaluator, InstanceScores

__all__ = [
    "BOUNDARY_NAME",
    "BOUNDARY_WIDTH",
    "DEFAULT_MIN_SIZE",
    "ClassCount",
    "ClassInstanceScores",
    "CocoImage",
    "ImageInstanceScores",
    "ImageObjects",
    "InstanceEvaluator",
    "InstanceScores",
    "Instances",
    "ObjectTable",
    "ObjectsWriter",
    "add_boundary",
    "boundary_index",
    "coco_document",
    "count_objects",
    "fold_boundary",
    "fold_boundary_probabilities",
    "image_annotations",
    "image_objects",
    "instance_file",
    "instance_labels",
    "measure_objects",
    "object_features",
    "object_labels",
    "read_label_image",
    "with_boundary_class",
    "without_boundary",
    "write_geojson",
    "write_label_image",
]
