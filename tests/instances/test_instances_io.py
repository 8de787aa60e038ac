"""Label images on disk, and objects.csv that survives a crash in the middle of a batch."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.io import PARTS_FOLDER, ObjectsWriter, instance_file, read_label_image, write_label_image
from pixelwise.instances.labels import Instances
from pixelwise.instances.measure import count_objects, measure_objects

CLASSES = ClassSpec(("background", "cell"), ((0, 0, 0), (255, 0, 0)))


def test_label_images_are_32_bit_tiffs_that_read_back(tmp_path: Path) -> None:
    labels = np.zeros((5, 7), np.int32)
    labels[1:3, 1:3] = 70000  # past 16 bits
    labels[4, 6] = 3
    write_label_image(tmp_path / "a.tif", labels)
    assert tifffile.imread(tmp_path / "a.tif").dtype == np.int32
    assert np.array_equal(read_label_image(tmp_path / "a.tif"), labels)
    sixteen = np.where(labels > 0, labels % 60000, 0).astype(np.uint16)  # a 16-bit PNG of labels
    Image.fromarray(sixteen).save(tmp_path / "b.png")
    assert np.array_equal(read_label_image(tmp_path / "b.png"), sixteen)


def test_what_is_no_label_image_is_one_line(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "float.tif", np.zeros((4, 4), np.float32))
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "negative.tif", np.full((4, 4), -1, np.int16))
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    for name, words in (
        ("float.tif", "one integer per pixel"),
        ("rgb.png", "no label image"),
        ("negative.tif", "negative labels"),
        ("broken.tif", "cannot read it"),
    ):
        with pytest.raises(PixelwiseError, match=words):
            read_label_image(tmp_path / name)


def test_instance_files_lie_beside_masks_or_predictions(tmp_path: Path) -> None:
    (tmp_path / "data" / "masks").mkdir(parents=True)
    (tmp_path / "data" / "instances").mkdir()
    (tmp_path / "data" / "instances" / "a.png").touch()
    assert instance_file(tmp_path / "data" / "masks" / "a.png") == tmp_path / "data" / "instances" / "a.png"
    assert instance_file(tmp_path / "data" / "masks" / "b.png") is None
    (tmp_path / "out" / "instances").mkdir(parents=True)
    (tmp_path / "out" / "instances" / "c.tif").touch()
    assert instance_file(tmp_path / "out" / "c.png") == tmp_path / "out" / "instances" / "c.tif"
    # a mask in a sub-folder of masks/ (named batch/d by evaluate): its label image in the same sub-folder
    (tmp_path / "data" / "instances" / "batch").mkdir()
    (tmp_path / "data" / "instances" / "batch" / "d.v2.tif").touch()
    found = instance_file(tmp_path / "data" / "masks" / "batch" / "d.v2.png")
    assert found == tmp_path / "data" / "instances" / "batch" / "d.v2.tif"


def objects_of(name: str, count: int) -> tuple:
    labels = np.zeros((6, 3 * max(count, 1)), np.int32)
    for index in range(count):
        labels[1:4, 3 * index : 3 * index + 2] = index + 1
    objects = Instances(labels, np.ones(count, np.int32))
    return measure_objects(objects, CLASSES, name=name), count_objects(objects, CLASSES, name=name)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_crash_keeps_every_finished_image_and_the_next_run_joins_them(tmp_path: Path) -> None:
    first = ObjectsWriter(tmp_path)
    first.add(*objects_of("b", 2))
    first.add(*objects_of("a", 1))
    # the process dies here: no objects.csv yet, but both images' rows are on disk, each file whole
    assert not (tmp_path / "objects.csv").exists()
    assert ObjectsWriter(tmp_path).done() == {"a", "b"}
    second = ObjectsWriter(tmp_path)
    second.add(*objects_of("c", 0))  # an image without objects: no rows, a zero count
    second.add(*objects_of("c/d.counts", 1))  # a name with a folder, and one that looks like a part file
    assert second.finish() == (4, 4)
    rows = read_rows(tmp_path / "objects.csv")
    assert [(row["image"], row["label"]) for row in rows] == [("a", "1"), ("b", "1"), ("b", "2"), ("c/d.counts", "1")]
    assert rows[0]["area"] == "6" and rows[0]["centroid_row"] == "2" and rows[0]["class"] == "cell"
    summary = read_rows(tmp_path / "objects_summary.csv")
    assert [(row["image"], row["count"], row["total_area"]) for row in summary] == [
        ("a", "1", "6"),
        ("b", "2", "12"),
        ("c", "0", "0"),  # counted, though it has no object
        ("c/d.counts", "1", "6"),
    ]
    assert not (tmp_path / PARTS_FOLDER).exists()


def test_images_with_other_bands_share_one_header(tmp_path: Path) -> None:
    labels = np.zeros((4, 4), np.int32)
    labels[1:3, 1:3] = 1
    objects = Instances(labels, np.ones(1, np.int32))
    writer = ObjectsWriter(tmp_path)
    writer.add(measure_objects(objects, image=np.ones((4, 4)), name="grey"), count_objects(objects, name="grey"))
    writer.add(measure_objects(objects, image=np.ones((4, 4, 2)), name="two"), count_objects(objects, name="two"))
    writer.finish()
    rows = read_rows(tmp_path / "objects.csv")
    assert rows[0]["mean_intensity"] == "1" and rows[0]["mean_intensity_band1"] == ""
    assert rows[1]["mean_intensity_band2"] == "1" and rows[1]["mean_intensity"] == ""
