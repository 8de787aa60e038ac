"""Objects as COCO annotations: one compressed RLE per object, the file CVAT, Label Studio, pycocotools and
detectron2 read.

The RLE and the annotation fields are the dataset exporter's (``data.importers.coco_export``:
``coco_annotation``, ``coco_categories``; ``data.importers.rle.encode_patch``), so there is one place for
COCO's encoding. Categories are the classes (id = class index + 1, with the class colour; the background
listed, without annotations), as ``pixelwise datasets export-coco`` writes them, so ``pixelwise datasets
import coco`` reads the file back. Each annotation carries ``attributes.label``: the object's value in
its label image and its ``label`` in ``objects.csv``.

``image_annotations`` makes one image's entry (a ``CocoImage``, which ``io.ObjectsWriter`` keeps as a part
file), ``coco_document`` joins images into one file, numbering images and annotations from 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.labels import Instances


@dataclass(frozen=True)
class CocoImage:
    """One image's objects for a COCO file: its ``file_name`` and size, the categories, and one annotation
    per object (without ``id`` and ``image_id``: ``coco_document`` numbers them)."""

    file_name: str
    height: int
    width: int
    categories: list[dict[str, Any]]
    annotations: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": {"file_name": self.file_name, "height": self.height, "width": self.width},
            "categories": self.categories,
            "annotations": self.annotations,
        }


def image_annotations(instances: Instances, classes: ClassSpec, *, file_name: str) -> CocoImage:
    """The objects of one image (``instances``; ``classes`` without a boundary class) as COCO annotations,
    ordered by label."""
    from scipy import ndimage

    from pixelwise.data.importers.base import Patch
    from pixelwise.data.importers.coco_export import coco_annotation, coco_categories

    labels = instances.labels
    annotations = []
    for index, window in enumerate(ndimage.find_objects(labels)):
        if window is None:
            continue
        patch = Patch(labels[window] == index + 1, window[0].start, window[1].start)
        category = int(instances.classes[index]) + 1
        annotation = coco_annotation(0, 0, category, patch, labels.shape)
        del annotation["id"], annotation["image_id"]
        annotation["attributes"] = {"label": index + 1}
        annotations.append(annotation)
    height, width = labels.shape
    return CocoImage(file_name, int(height), int(width), coco_categories(classes), annotations)


def coco_document(images: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One COCO file of ``images`` (``CocoImage.to_dict()`` each, in order): images numbered 1..N,
    annotations 1..M, the categories of the first image."""
    entries: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, 1):
        entries.append({"id": image_id, **image["image"]})
        for annotation in image["annotations"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **annotation})
    return {
        "info": {"description": "objects found by pixelwise (--instances)"},
        "licenses": [],
        "images": entries,
        "annotations": annotations,
        "categories": list(images[0]["categories"]) if images else [],
    }
