"""Objects as COCO annotations: each object's RLE decodes to exactly its pixels, and COCO readers take the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.coco import coco_document, image_annotations
from pixelwise.instances.io import COCO_FILE, ObjectsWriter
from pixelwise.instances.labels import instance_labels
from pixelwise.instances.measure import count_objects, measure_objects

pytest.importorskip("pycocotools")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

CLASSES = ClassSpec(("background", "cell", "nucleus"), ((0, 0, 0), (255, 0, 0), (0, 200, 255)))


def scene(seed: int) -> np.ndarray:
    """(30, 41) class mask: blobs of two classes, one with a hole, one on the last pixel."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((30, 41), np.uint8)
    for _ in range(6):
        top, left = rng.integers(0, 24), rng.integers(0, 35)
        mask[top : top + rng.integers(3, 7), left : left + rng.integers(3, 7)] = rng.integers(1, 3)
    mask[10:16, 20:26] = 1
    mask[12:14, 22:24] = 0  # a hole
    mask[-3:, -3:] = 2
    return mask


@pytest.mark.parametrize("seed", range(3))
def test_each_objects_rle_decodes_to_its_pixels_and_pycocotools_reads_the_file(seed: int, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from pixelwise.data.importers.rle import check_rle, rle_mask

    objects = instance_labels(scene(seed), CLASSES, split=False, min_size=0)
    image = image_annotations(objects, CLASSES, file_name="a.png")
    document = coco_document([image.to_dict()])
    assert [category["name"] for category in document["categories"]] == list(CLASSES.names)
    assert len(document["annotations"]) == objects.count
    for annotation in document["annotations"]:
        label = annotation["attributes"]["label"]
        truth = objects.labels == label
        decoded = rle_mask(check_rle(annotation["segmentation"], (30, 41), where="test"), (30, 41))
        np.testing.assert_array_equal(decoded, truth)
        assert annotation["category_id"] == objects.classes[label - 1] + 1
        assert annotation["area"] == truth.sum()
        rows, columns = np.nonzero(truth)
        assert annotation["bbox"] == [columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1]
    (tmp_path / "objects.json").write_text(json.dumps(document))
    coco = COCO(str(tmp_path / "objects.json"))
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    np.testing.assert_array_equal(coco.annToMask(first).astype(bool), objects.labels == 1)


def test_the_writer_joins_the_images_annotations_numbered_from_one(tmp_path: Path) -> None:
    writer = ObjectsWriter(tmp_path)
    for name, seed in (("b", 1), ("a", 2)):
        objects = instance_labels(scene(seed), CLASSES, split=False, min_size=0)
        coco = image_annotations(objects, CLASSES, file_name=f"{name}.png")
        writer.add(measure_objects(objects, CLASSES, name=name), count_objects(objects, CLASSES, name=name), coco=coco)
    objects_written, images = writer.finish()
    document = json.loads((tmp_path / COCO_FILE).read_text())
    assert [(image["id"], image["file_name"]) for image in document["images"]] == [(1, "a.png"), (2, "b.png")]
    assert [annotation["id"] for annotation in document["annotations"]] == list(range(1, objects_written + 1))
    assert images == 2
