"""The instances sink in a job: label images, GeoJSON and tables per image; the tables those of the finished
images only, completed by a rerun; intensities in stored units; one line for an image too large."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.sources import ArraySource, Georeference, ImageInfo, ImageSource
from pixelwise.instances.io import PARTS_FOLDER, read_label_image
from pixelwise.jobs import Item, Job, collect_items, run_job
from pixelwise.sinks import PredictionBand, make_sink
from pixelwise.sinks.objects import InstanceSink

CLASSES = ClassSpec(("background", "cell"), ((0, 0, 0), (255, 0, 0)))


def discs(count: int, *, value: int = 200, size: int = 40) -> np.ndarray:
    """(size, size) uint8: ``count`` separate discs of ``value`` on 20."""
    rows, columns = np.mgrid[:size, :size]
    picture = np.full((size, size), 20, np.uint8)
    for index in range(count):
        centre = (10 + 20 * (index // 2), 10 + 20 * (index % 2))
        picture[np.hypot(rows - centre[0], columns - centre[1]) < 6] = value
    return picture


def write_images(folder: Path, counts: dict[str, int]) -> list[Item]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in counts.items():
        Image.fromarray(discs(count)).save(folder / f"{name}.png")
    return collect_items([folder])


def threshold_task(
    item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
) -> Iterator[PredictionBand]:
    """Class 1 above half grey, in bands of 7 rows (the sink gathers them)."""
    for top in range(0, source.info.height, 7):
        rows = min(7, source.info.height - top)
        yield PredictionBand(top, (source.read(top, 0, rows, source.info.width)[:, :, 0] > 0.5).astype(np.uint8))
    progress(1)


def objects_job(items: list[Item], out: Path, **options: Any) -> Job:
    sink = InstanceSink(out=out, inputs={item.name: item.path for item in items}, **options)
    return Job(items, out, [sink, make_sink("mask")], classes=CLASSES, settings={"run": 1})


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_each_image_gets_labels_polygons_and_rows(tmp_path: Path) -> None:
    items = write_images(tmp_path / "in", {"a": 3, "b": 0})
    out = tmp_path / "out"
    report = run_job(objects_job(items, out), threshold_task, quiet=True)
    assert report.written == ["a", "b"]
    labels = read_label_image(out / "instances" / "a.tif")
    assert labels.shape == (40, 40) and sorted(np.unique(labels).tolist()) == [0, 1, 2, 3]
    features = json.loads((out / "instances" / "a.geojson").read_text())["features"]
    assert [feature["properties"]["class"] for feature in features] == ["cell"] * 3
    objects = rows(out / "instances" / "objects.csv")
    assert [(row["image"], row["label"], row["class"]) for row in objects] == [
        ("a", "1", "cell"),
        ("a", "2", "cell"),
        ("a", "3", "cell"),
    ]
    # the discs' stored value, 200: the mean intensity compares across images (not read_image's 200 / 255)
    assert {row["mean_intensity"] for row in objects} == {"200"}
    assert [(row["image"], row["count"]) for row in rows(out / "instances" / "objects_summary.csv")] == [
        ("a", "3"),
        ("b", "0"),
    ]
    # the masks beside them are as without --instances, and evaluate's folder reading leaves instances/ out
    assert (out / "a.png").is_file() and (out / "b.png").is_file()


def test_a_sixteen_bit_image_is_measured_in_its_stored_counts(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    counts = discs(2).astype(np.uint16) * 15  # discs of 3000 on 300: a microscope's few hundred levels
    tifffile.imwrite(tmp_path / "in" / "scan.tif", counts)
    out = tmp_path / "out"
    run_job(objects_job(collect_items([tmp_path / "in"]), out), threshold_task, quiet=True)
    assert {row["mean_intensity"] for row in rows(out / "instances" / "objects.csv")} == {"3000"}


def test_a_failed_image_has_no_rows_and_the_rerun_completes_the_tables(tmp_path: Path) -> None:
    items = write_images(tmp_path / "in", {"a": 1, "b": 2, "c": 3})
    out = tmp_path / "out"
    good = (tmp_path / "in" / "b.png").read_bytes()
    (tmp_path / "in" / "b.png").write_bytes(good[: len(good) // 2])  # damaged: b fails, a and c go on
    report = run_job(objects_job(items, out), threshold_task, quiet=True)
    assert report.written == ["a", "c"] and len(report.failed) == 1
    assert [row["image"] for row in rows(out / "instances" / "objects.csv")] == ["a", "c", "c", "c"]
    assert [row["image"] for row in rows(out / "instances" / "objects_summary.csv")] == ["a", "c"]
    assert not (out / "instances" / "b.tif").exists()
    (tmp_path / "in" / "b.png").write_bytes(good)  # mended: the same command does b alone
    report = run_job(objects_job(items, out), threshold_task, quiet=True)
    assert report.complete == ["a", "c"] and report.written == ["b"]
    assert [row["image"] for row in rows(out / "instances" / "objects.csv")] == ["a", "b", "b", "c", "c", "c"]


def test_a_run_killed_before_its_tables_leaves_the_rows_that_its_rerun_joins(tmp_path: Path) -> None:
    items = write_images(tmp_path / "in", {"a": 1, "b": 2, "c": 3})
    out = tmp_path / "out"

    def killed(item: Item, source: ImageSource, **options: Any) -> Iterator[PredictionBand]:
        if item.name == "c":
            raise KeyboardInterrupt
        yield from threshold_task(item, source, **options)

    with pytest.raises(KeyboardInterrupt):
        run_job(objects_job(items, out), killed, quiet=True)
    assert not (out / "instances" / "objects.csv").exists()  # killed before the join
    report = run_job(objects_job(items, out), threshold_task, quiet=True)
    assert report.complete == ["a", "b"] and report.written == ["c"]
    assert len(rows(out / "instances" / "objects.csv")) == 6
    # a rerun that finds every image done writes the tables again from the parts (removed ones too)
    (out / "instances" / "objects.csv").unlink()
    report = run_job(objects_job(items, out), threshold_task, quiet=True)
    assert report.written == [] and len(rows(out / "instances" / "objects.csv")) == 6
    assert (out / "instances" / PARTS_FOLDER).is_dir()


def test_a_later_sink_that_fails_takes_back_the_objects_of_its_image(tmp_path: Path) -> None:
    from pixelwise.errors import InputError

    items = write_images(tmp_path / "in", {"a": 1, "b": 2})
    out = tmp_path / "out"

    class Refusing:
        """A mask sink whose commit refuses image b (after the objects of b were written)."""

        name, needs_probabilities, needs_pixels = "refusing", False, False

        def path(self, out: Path, name: str) -> Path:
            return out / f"{name}.refused"

        def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> Any:
            class Writer:
                def write(self, band: PredictionBand) -> None:
                    pass

                def commit(self) -> None:
                    if path.stem == "b":
                        raise InputError(f"{path}: refused")
                    path.write_text("ok")

                def discard(self) -> None:
                    pass

            return Writer()

    sink = InstanceSink(out=out, inputs={item.name: item.path for item in items})
    report = run_job(Job(items, out, [sink, Refusing()], classes=CLASSES, settings={}), threshold_task, quiet=True)
    assert report.written == ["a"]
    assert not (out / "instances" / "b.tif").exists() and not (out / "instances" / "b.geojson").exists()
    assert {row["image"] for row in rows(out / "instances" / "objects.csv")} == {"a"}
    assert not list((out / "instances" / PARTS_FOLDER).glob("b.*"))


def test_an_image_whose_objects_do_not_fit_in_memory_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelwise.data import memory

    items = write_images(tmp_path / "in", {"a": 1})
    monkeypatch.setattr(memory, "memory_room", lambda: memory.Room(10_000, "{} are available", "free memory"))
    report = run_job(objects_job(items, tmp_path / "out"), threshold_task, quiet=True)
    (failure,) = [message for _, message in report.failed]
    assert "--instances finds objects on the whole image in memory: 40x40" in failure
    assert "predict it without --instances" in failure and "\n" not in failure


def test_a_georeferenced_image_has_its_objects_in_map_coordinates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    where = Georeference("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0))
    info = ImageInfo(40, 40, 1, "uint8", georeference=where)
    path = tmp_path / "field.png"
    Image.fromarray(discs(1)).save(path)
    item = Item(path, "field")

    def source(item: Item) -> ImageSource:
        return ArraySource(discs(1)[:, :, None].astype(np.float32) / 255, info=info)

    job = Job([item], out, [InstanceSink(out=out)], classes=CLASSES, settings={})
    run_job(job, threshold_task, quiet=True, open_source=source)
    collection = json.loads((out / "instances" / "field.geojson").read_text())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    x, y = np.array(collection["features"][0]["geometry"]["coordinates"][0]).T
    assert 500000 < x.min() < x.max() < 500400 and 3999600 < y.min() < y.max() < 4000000
    # no input file given: no intensity columns rather than values in another unit
    assert "mean_intensity" not in rows(out / "instances" / "objects.csv")[0]
