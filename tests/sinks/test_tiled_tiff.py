"""The tiled pyramidal TIFF mask: bands in, a file QuPath / OpenSlide (tiffslide) / tifffile / evaluate read,
with the classes in its metadata; resumable from its spill; whole or absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask
from pixelwise.data.sources import ImageInfo
from pixelwise.files import is_bookkeeping
from pixelwise.sinks import PredictionBand, make_sink, tiled_tiff
from pixelwise.sinks.spill import spill_path

CLASSES = ClassSpec(("background", "tumour", "stroma"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiled_tiff, "TILE", 64)


def _labels(height: int = 300, width: int = 200) -> np.ndarray:
    rows, columns = np.mgrid[:height, :width]
    return ((rows // 23 + columns // 17) % 3).astype(np.uint8)


def _bands(labels: np.ndarray, heights: tuple[int, ...] = (37, 50, 13)) -> list[PredictionBand]:
    bands, top, index = [], 0, 0
    while top < len(labels):
        rows = heights[index % len(heights)]
        bands.append(PredictionBand(top, labels[top : top + rows]))
        top, index = top + rows, index + 1
    return bands


def test_bands_become_a_pyramidal_palette_tiff_that_every_reader_takes(tmp_path: Path) -> None:
    labels = _labels()
    sink = make_sink("tiled-mask")
    path = sink.path(tmp_path, "slide")
    writer = sink.open(path, ImageInfo(300, 200, 3, "uint8", mpp=0.5), CLASSES)
    for band in _bands(labels):
        writer.write(band)
    assert not path.exists()  # only the spill so far
    writer.commit()
    assert not spill_path(path).exists()
    np.testing.assert_array_equal(read_mask(path, CLASSES), labels)  # what evaluate reads
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        assert page.is_tiled and page.tilewidth == 64 and page.photometric == tifffile.PHOTOMETRIC.PALETTE
        assert [level.shape for level in tiff.series[0].levels] == [(300, 200), (150, 100), (75, 50), (38, 25)]
        np.testing.assert_array_equal(tiff.series[0].levels[1].asarray(), labels[::2, ::2])
        assert page.colormap[:, 1].tolist() == [65535, 0, 0]  # tumour is red
        description = json.loads(page.description)
        assert description["classes"]["classes"][1]["name"] == "tumour" and description["mpp"] == 0.5
    import tiffslide

    slide = tiffslide.TiffSlide(path)
    assert slide.level_dimensions == ((200, 300), (100, 150), (50, 75), (25, 38))
    assert slide.properties["tiffslide.mpp-x"] == pytest.approx(0.5)
    region = slide.read_region((10, 20), 0, (100, 50), as_array=True)
    np.testing.assert_array_equal(region[..., 0], labels[20:70, 10:110])


def test_a_killed_run_resumes_at_its_last_finished_block(tmp_path: Path) -> None:
    labels = _labels()
    info = ImageInfo(300, 200, 3, "uint8")
    sink = make_sink("tiled-mask", key="job A")
    path = sink.path(tmp_path, "slide")
    writer = sink.open(path, info, CLASSES)
    for band in _bands(labels)[:4]:  # rows 0..150: two blocks of 64 done
        writer.write(band)
    writer.discard()  # the run dies: the spill stays, hidden and bookkeeping
    assert is_bookkeeping(spill_path(path).name) and not path.exists()
    # a torn write at the end of the spill is cut off
    with spill_path(path).open("ab") as handle:
        handle.write(b"\x02\x00\x00\x00 torn")
    assert sink.resume_row(path, info) == 128
    assert make_sink("tiled-mask", key="job B").resume_row(path, info) == 0  # other settings: start over
    writer = sink.open(path, info, CLASSES)
    for band in _bands(labels):
        if band.top + band.rows > 128:
            writer.write(band)  # bands from the resumed row on (one straddles it)
    writer.commit()
    np.testing.assert_array_equal(read_mask(path, CLASSES), labels)


def test_a_mask_with_missing_rows_is_not_written(tmp_path: Path) -> None:
    sink = make_sink("tiled-mask")
    path = sink.path(tmp_path, "slide")
    writer = sink.open(path, ImageInfo(300, 200, 3, "uint8"), CLASSES)
    writer.write(PredictionBand(0, _labels()[:100]))
    with pytest.raises(ValueError, match="never came"):
        writer.commit()
    assert not path.exists()
