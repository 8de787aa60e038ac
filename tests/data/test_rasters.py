"""The raster readers: GeoTIFF through rasterio by window, multi-sample TIFF through tifffile, .npy arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

import pixelwise.data.raster_files as raster_files
import pixelwise.data.rasters as rasters
from pixelwise.data.bands import BandRanges, InputBands
from pixelwise.data.io import read_image
from pixelwise.data.raster_files import is_raster, raster_info
from pixelwise.data.rasters import RasterSource, decode_bands, read_bands
from pixelwise.data.sources import open_image
from pixelwise.errors import InputError, PixelwiseError


def bands(seed: int = 0, count: int = 6, height: int = 30, width: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 5000, (count, height, width)).astype(np.uint16)


def test_a_geotiff_is_read_by_window_with_its_georeference(tmp_path: Path, geodata: Any) -> None:
    values = bands()
    values[:, :3, :5] = 0
    path = geodata.write_raster(tmp_path / "s.tif", values, nodata=0, names=geodata.NAMES, tile=16)
    info = raster_info(path)
    assert (info.height, info.width, info.bands, info.dtype) == (30, 40, 6, "uint16")
    assert info.georeference is not None and info.georeference.crs == geodata.CRS
    assert info.georeference.transform == geodata.transform()
    assert info.band_names == geodata.NAMES and info.nodata == 0
    assert is_raster(path) and isinstance(open_image(path), RasterSource)
    with RasterSource(path, input_bands=InputBands(("B8", 2))) as source:
        assert source.info.bands == 2 and source.info.band_names == ("B8", "B3")
        whole, missing = source.whole()
        # windows are the whole image's pixels: one range for the image, not one per window
        np.testing.assert_array_equal(source.read(10, 7, 9, 20), whole[10:19, 7:27])
        np.testing.assert_array_equal(source.stored(0, 0, 30, 40), np.moveaxis(values[[3, 1]], 0, -1))
        assert missing is not None and missing.sum() == 15 and (whole[missing] == 0).all()
        assert source.missing(0, 0, 3, 5).all() and source.missing(20, 20, 5, 5) is None


def test_a_large_image_takes_its_own_range_from_a_decimated_read(
    tmp_path: Path, geodata: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = geodata.write_raster(tmp_path / "big.tif", bands(count=2, height=64, width=64), tile=16)
    monkeypatch.setattr(rasters, "EXACT_RANGE_VALUES", 1000)
    with RasterSource(path) as source:
        top = source.read(0, 0, 32, 64)
        bottom = source.read(32, 0, 32, 64)
        both = np.concatenate([top, bottom])
        assert source._image_ranges() is source._image_ranges()  # computed once
        assert both.min() >= 0 and both.max() <= 1 and both.max() > 0.9


def test_a_multi_sample_tiff_reads_through_tifffile_with_gdal_tags(tmp_path: Path, geodata: Any) -> None:
    values = bands(count=5)
    values[:, 0, 0] = 7
    # no CRS: a plain TIFF, which tifffile reads; GDAL still wrote its band names and no-data value
    path = geodata.write_raster(tmp_path / "plain.tif", values, crs=None, nodata=7, names=list("abcde"))
    info = raster_info(path)
    assert (info.bands, info.georeference, info.band_names, info.nodata) == (5, None, tuple("abcde"), 7.0)
    image, missing = read_bands(path, input_bands=InputBands(("e", "a")))
    assert image.shape == (30, 40, 2) and missing is not None and missing[0, 0]
    # written by tifffile, planar: any number of samples, no tags
    tifffile.imwrite(tmp_path / "planar.tif", values, photometric="minisblack", planarconfig="separate")
    assert read_image(tmp_path / "planar.tif").shape == (30, 40, 5)
    assert raster_info(tmp_path / "planar.tif").bands == 5 and is_raster(tmp_path / "planar.tif")


def test_npy_arrays_are_memory_mapped_and_read_by_window(tmp_path: Path) -> None:
    array = np.random.default_rng(2).random((20, 30, 4)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    np.save(tmp_path / "grey.npy", array[:, :, 0].astype(np.float64))
    assert raster_info(tmp_path / "a.npy").bands == 4 and raster_info(tmp_path / "grey.npy").bands == 1
    with RasterSource(
        tmp_path / "a.npy", input_bands=InputBands((), None, BandRanges((0.0,) * 4, (2.0,) * 4))
    ) as source:
        assert isinstance(source._file.pixels, np.memmap)
        np.testing.assert_allclose(source.read(5, 6, 3, 4), array[5:8, 6:10] / 2, rtol=1e-6)
    assert read_image(tmp_path / "a.npy").shape == (20, 30, 4)
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(InputError, match=r"cube\.npy: an array of shape \(2, 3, 4, 5\)"):
        read_image(tmp_path / "cube.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(InputError, match=r"text\.npy: not a numpy \.npy array"):
        raster_info(tmp_path / "text.npy")


def test_plain_grey_and_rgb_images_keep_the_whole_image_reader(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "grey16.tif", np.arange(16, dtype=np.uint16).reshape(4, 4))
    for name in ("rgb.png", "grey16.tif"):
        assert not is_raster(tmp_path / name)
        assert not isinstance(open_image(tmp_path / name), RasterSource)
    assert raster_info(tmp_path / "rgb.png").bands == 3 and raster_info(tmp_path / "grey16.tif").bands == 1


def test_without_rasterio_a_geotiff_is_a_plain_tiff_with_a_note(
    tmp_path: Path, geodata: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = geodata.write_raster(tmp_path / "s.tif", bands(count=4), nodata=0)
    with_georeference = read_bands(path)[0]
    monkeypatch.setattr(raster_files, "rasterio_module", lambda: None)
    monkeypatch.setattr(raster_files, "_told_without_rasterio", [])
    with pytest.warns(UserWarning, match=r"s\.tif is a GeoTIFF; without rasterio its georeference is not read"):
        info = raster_info(path)
    assert info.georeference is None and info.bands == 4 and info.nodata == 0
    np.testing.assert_array_equal(read_bands(path)[0], with_georeference)  # the same pixels, through tifffile
    (tmp_path / "s.jp2").write_bytes(b"\0" * 16)
    with pytest.raises(PixelwiseError, match=r"s\.jp2: a \.jp2 raster needs rasterio: pip install 'pixelwise\[geo\]'"):
        RasterSource(tmp_path / "s.jp2")


def test_an_upload_is_read_by_the_model_rule(tmp_path: Path, geodata: Any) -> None:
    values = bands(count=6)
    path = geodata.write_raster(tmp_path / "s.tif", values, crs=None, names=geodata.NAMES)
    rule = InputBands(("B8", "B2"), None, BandRanges((0.0, 0.0), (5000.0, 10000.0)))
    image = decode_bands(path.read_bytes(), "upload.tif", input_bands=rule)
    np.testing.assert_allclose(image[..., 0], values[3] / 5000, rtol=1e-6)
    np.testing.assert_allclose(image[..., 1], values[0] / 10000, rtol=1e-6)
    with pytest.raises(InputError, match=r"upload\.tif: band 9 is beyond its 6 bands"):
        decode_bands(path.read_bytes(), "upload.tif", input_bands=InputBands((9,)))
