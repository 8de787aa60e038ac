"""The job loop that predict and classical share: a bad image never stops a batch, a rerun finishes only
what is missing, nothing half-written is left, and nothing that is not the job's own is replaced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask
from pixelwise.data.sources import ImageSource
from pixelwise.errors import PixelwiseError
from pixelwise.files import JOB_MANIFEST, folder_entries
from pixelwise.jobs import Item, Job, collect_items, run_job
from pixelwise.sinks import PredictionBand, make_sink

CLASSES = ClassSpec.default(2)


def images(folder: Path, count: int, *, size: int = 12) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"img{index}.png"
        pixels = np.random.default_rng(index).integers(0, 256, (size, size + index)).astype(np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def threshold_task(
    item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
) -> Iterator[PredictionBand]:
    """Class 1 where the grey value is above a half, in bands of five rows."""
    for top in range(0, source.info.height, 5):
        rows = min(5, source.info.height - top)
        pixels = source.read(top, 0, rows, source.info.width)
        yield PredictionBand(top, (pixels[:, :, 0] > 0.5).astype(np.uint8))
    progress(1)


def job(items: list[Item], out: Path, **fields: Any) -> Job:
    sinks = [make_sink(name) for name in fields.pop("sinks", ["mask"])]
    return Job(items, out, sinks, classes=CLASSES, settings=fields.pop("settings", {"run": 1}), **fields)


def test_a_damaged_image_is_listed_and_the_others_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = images(tmp_path / "in", 3)
    paths[1].write_bytes(paths[1].read_bytes()[:120])  # a valid header, the data cut off
    out = tmp_path / "out"
    report = run_job(job(collect_items([tmp_path / "in"]), out), threshold_task, quiet=True)
    assert report.written == ["img0", "img2"] and [path for path, _ in report.failed] == [paths[1]]
    assert "img1.png: cannot read the image" in capsys.readouterr().err
    assert sorted(path.name for path in folder_entries(out)) == ["img0.png", "img2.png"]
    assert str(report.failure(3)).startswith("1 of 3 images failed")
    # fixed, the same job again finishes only what is missing
    Image.fromarray(np.full((12, 13), 200, np.uint8)).save(paths[1])  # all class 1
    before = (out / "img0.png").stat().st_mtime_ns
    again = run_job(job(collect_items([tmp_path / "in"]), out), threshold_task, quiet=True)
    assert again.written == ["img1"] and again.complete == ["img0", "img2"] and not again.failed
    assert (out / "img0.png").stat().st_mtime_ns == before
    assert read_mask(out / "img1.png", CLASSES).min() == 1


def test_a_setting_error_stops_the_job_at_once(tmp_path: Path) -> None:
    images(tmp_path / "in", 3)
    calls: list[str] = []

    def bad_setting(item: Item, source: ImageSource, **_: Any) -> Iterator[PredictionBand]:
        calls.append(item.name)
        raise PixelwiseError("otsu: classes must be an integer >= 2, got 'zero'")
        yield  # a generator

    with pytest.raises(PixelwiseError, match="classes must be an integer"):
        run_job(job(collect_items([tmp_path / "in"]), tmp_path / "out"), bad_setting, quiet=True)
    assert calls == ["img0"] and not (tmp_path / "out").exists()


def test_an_interrupted_image_leaves_no_file_and_the_rerun_finishes(tmp_path: Path) -> None:
    images(tmp_path / "in", 3)
    out = tmp_path / "out"

    def interrupted(item: Item, source: ImageSource, **options: Any) -> Iterator[PredictionBand]:
        if item.name == "img1":
            yield PredictionBand(0, np.zeros((5, source.info.width), np.uint8))
            raise KeyboardInterrupt
        yield from threshold_task(item, source, **options)

    sinks = ["mask", "overlay", "probabilities"]
    with pytest.raises(KeyboardInterrupt):
        run_job(job(collect_items([tmp_path / "in"]), out, sinks=["mask", "overlay"]), interrupted, quiet=True)
    assert sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()) == [
        JOB_MANIFEST,
        "img0.png",
        "overlays/img0.png",
    ]
    report = run_job(job(collect_items([tmp_path / "in"]), out, sinks=["mask", "overlay"]), threshold_task, quiet=True)
    assert report.complete == ["img0"] and report.written == ["img1", "img2"]
    # other outputs asked for are another job: the files already there are not its own
    with pytest.raises(PixelwiseError, match=r"6 output files exist already .*add --overwrite"):
        run_job(job(collect_items([tmp_path / "in"]), out, sinks=sinks), threshold_task, quiet=True)


def test_files_of_another_run_are_replaced_only_with_overwrite(tmp_path: Path) -> None:
    images(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"the user's own file")
    items = collect_items([tmp_path / "in"])
    with pytest.raises(PixelwiseError, match=r"1 output files exist already .*img1\.png"):
        run_job(job(items, out), threshold_task, quiet=True)
    assert folder_entries(out) == [out / "img1.png"] and (out / "img1.png").read_bytes() == b"the user's own file"
    report = run_job(job(items, out, overwrite=True), threshold_task, quiet=True)
    assert report.written == ["img0", "img1"]


def test_images_in_sub_folders_keep_their_place_in_the_outputs(tmp_path: Path) -> None:
    images(tmp_path / "in", 1)
    images(tmp_path / "in" / "batch2", 2)
    (tmp_path / "in" / ".hidden").mkdir()
    items = collect_items([tmp_path / "in"])
    assert [item.name for item in items] == ["batch2/img0", "batch2/img1", "img0"]
    out = tmp_path / "out"
    run_job(job(items, out, sinks=["mask", "overlay"]), threshold_task, quiet=True)
    assert (out / "batch2" / "img1.png").is_file() and (out / "overlays" / "batch2" / "img1.png").is_file()


def test_two_images_onto_one_output_and_an_output_over_an_input_are_refused(tmp_path: Path) -> None:
    first = images(tmp_path / "a", 1)[0]
    second = images(tmp_path / "b", 1)[0]
    with pytest.raises(PixelwiseError, match=r"would both be written as 'img0'"):
        run_job(job([Item(first, "img0"), Item(second, "img0")], tmp_path / "out"), threshold_task, quiet=True)
    with pytest.raises(PixelwiseError, match="a folder the inputs are read from"):
        run_job(job([Item(first, "img0")], tmp_path / "a", input_folders=[tmp_path / "a"]), threshold_task)


def test_probabilities_are_written_band_by_band(tmp_path: Path) -> None:
    path = images(tmp_path / "in", 1, size=23)[0]

    def with_probabilities(
        item: Item, source: ImageSource, *, probabilities: bool, **_: Any
    ) -> Iterator[PredictionBand]:
        assert probabilities
        for top in range(0, 23, 7):
            rows = min(7, 23 - top)
            values = np.full((2, rows, 23), 0.5, np.float32)
            values[1] += top / 100
            yield PredictionBand(top, values.argmax(axis=0).astype(np.uint8), probabilities=values)

    run_job(job([Item(path, "img0")], tmp_path / "out", sinks=["mask", "probabilities"]), with_probabilities)
    stored = np.load(tmp_path / "out" / "probabilities" / "img0.npy")
    assert stored.dtype == np.float16 and stored.shape == (2, 23, 23)
    np.testing.assert_allclose(stored[1, :, 0], [0.5 + 7 * (row // 7) / 100 for row in range(23)], atol=1e-3)
