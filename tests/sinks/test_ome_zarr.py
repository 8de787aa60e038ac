"""Probabilities as OME-Zarr: written in whole rows of chunks as bands finish, readable by zarr with the
OME-NGFF metadata, resumable, and a folder that appears whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from pixelwise.data.classes import ClassSpec
from pixelwise.data.sources import ImageInfo
from pixelwise.sinks import PredictionBand, make_sink, ome_zarr

CLASSES = ClassSpec.default(3, names=["background", "tumour", "stroma"])


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ome_zarr, "CHUNK", 32)


def _probabilities(height: int = 100, width: int = 70) -> np.ndarray:
    logits = np.random.default_rng(0).normal(size=(3, height, width)).astype(np.float32)
    values = np.exp(logits)
    return (values / values.sum(axis=0)).astype(np.float32)


def _write(writer: object, values: np.ndarray, first: int = 0, last: int | None = None) -> None:
    for top in range(0, values.shape[1], 30)[first:last]:
        chunk = values[:, top : top + 30]
        writer.write(PredictionBand(top, chunk.argmax(axis=0).astype(np.uint8), probabilities=chunk))  # type: ignore[attr-defined]


def test_probabilities_become_an_ome_zarr_image(tmp_path: Path) -> None:
    values = _probabilities()
    sink = make_sink("probabilities-zarr")
    path = sink.path(tmp_path, "slide")
    writer = sink.open(path, ImageInfo(100, 70, 3, "uint8", mpp=0.5), CLASSES)
    _write(writer, values)
    assert not path.exists()
    writer.commit()
    group = zarr.open_group(path, mode="r")
    array = group["0"]
    assert array.shape == (3, 100, 70) and array.dtype == np.float16 and array.chunks == (1, 32, 32)
    np.testing.assert_array_equal(array[:], values.astype(np.float16))
    multiscale = group.attrs["multiscales"][0]
    assert multiscale["version"] == "0.4" and [axis["name"] for axis in multiscale["axes"]] == ["c", "y", "x"]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    assert [channel["label"] for channel in group.attrs["omero"]["channels"]] == ["background", "tumour", "stroma"]
    assert (path / "0" / "0" / "0" / "0").is_file()  # "/" chunk keys, as OME-NGFF 0.4 asks


def test_a_killed_run_resumes_at_its_last_row_of_chunks(tmp_path: Path) -> None:
    values = _probabilities()
    info = ImageInfo(100, 70, 3, "uint8")
    sink = make_sink("probabilities-zarr", key="job A")
    path = sink.path(tmp_path, "slide")
    writer = sink.open(path, info, CLASSES)
    _write(writer, values, last=3)  # rows 0..90: two rows of 32-row chunks
    writer.discard()
    assert sink.resume_row(path, info) == 64 and not path.exists()
    writer = sink.open(path, info, CLASSES)
    _write(writer, values, first=2)  # from the band holding row 64 on
    writer.commit()
    np.testing.assert_array_equal(zarr.open_array(path / "0", mode="r")[:], values.astype(np.float16))


def test_without_zarr_the_sink_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from pixelwise.errors import PixelwiseError

    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(PixelwiseError, match=r"writes OME-Zarr, which needs zarr: pip install 'pixelwise\[wsi\]'$"):
        make_sink("probabilities-zarr")
