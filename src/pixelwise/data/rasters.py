"""Rasters: images of any number of bands, read by window, with their georeference and no-data value.

A ``RasterSource`` is an ``ImageSource`` (``data.sources``) over a file that ``data.raster_files`` reads
(GeoTIFF and GDAL rasters through rasterio by window, multi-sample TIFF through tifffile, ``.npy``):
``read(top, left, h, w)`` gives the chosen bands as float32 in [0, 1] by the rule of ``data.bands`` (the
model's band ranges, or the image's own range computed once for the whole image), no-data pixels as 0;
``missing(top, left, h, w)`` says which pixels are no data. ``data.raster_files.is_raster`` is what the
image registry asks: the files these readers exist for (georeferenced, a no-data tag, band counts other than
grey or RGB, ``.npy``, ``.jp2``); plain grey and RGB images keep the whole-image reader, so their values do
not move.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.bands import BandRanges, InputBands, band_indices, image_range, nodata_pixels, to_unit_range
from pixelwise.data.channels import channel_mismatch
from pixelwise.data.image_info import ImageInfo
from pixelwise.data.raster_files import gdal_tags, open_file

# an image of more values than this gets its per-image range from a decimated read, not from every pixel
EXACT_RANGE_VALUES = 1 << 25


# --- the source ----------------------------------------------------------------------------------------


class RasterSource:
    """An ``ImageSource`` over a raster file: the chosen bands in [0, 1] by window (see the module).

    ``input_bands``: the model's (or the dataset's) band selection, no-data value and band ranges; ``nodata``:
    a value given now, which wins over both the recorded one and the file's. ``info`` describes what ``read``
    gives (float32, the chosen bands, their names) and the file's georeference and no-data value.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, input_bands: InputBands | None = None, nodata: float | None = None
    ) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        rule = input_bands or InputBands()
        self._file = open_file(self.path)
        try:
            header = self._file.info
            self.indices = band_indices(rule.selection, count=header.bands, names=header.band_names, file=self.name)
            self.nodata = nodata if nodata is not None else rule.nodata if rule.nodata is not None else header.nodata
            self.ranges = rule.ranges
            if self.ranges is not None and len(self.ranges.low) != len(self.indices):
                # the ranges are a model's, one per band it was trained on: no grey <-> RGB conversion here
                raise channel_mismatch(len(self.indices), len(self.ranges.low), self.name)
        except BaseException:
            self._file.close()
            raise
        self.stored_dtype = header.dtype
        names = tuple(header.band_names[index] for index in self.indices) if header.band_names else ()
        # read() gives float32 in [0, 1] whatever is stored (uint8 / 255 as read_image divides)
        self._info = ImageInfo(
            header.height,
            header.width,
            len(self.indices),
            "float32",
            georeference=header.georeference,
            band_names=names,
            nodata=self.nodata,
        )

    @property
    def info(self) -> ImageInfo:
        return self._info

    def stored(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """The chosen bands of a window as stored (h, w, C)."""
        return self._file.read(self.indices, top, left, height, width)

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        values = self.stored(top, left, height, width)
        missing = nodata_pixels(values, self.nodata)
        ranges = self.ranges
        if ranges is None and values.dtype not in (np.uint8, np.bool_):
            ranges = self._image_ranges()
        return to_unit_range(values, ranges=ranges, missing=missing)

    @property
    def may_miss(self) -> bool:
        """Whether any pixel can be no data: a no-data value is known, or floats may be NaN."""
        return self.nodata is not None or np.issubdtype(np.dtype(self.stored_dtype), np.floating)

    def missing(self, top: int, left: int, height: int, width: int) -> np.ndarray | None:
        """(h, w) bool: the no-data pixels of a window; None when there are none."""
        return nodata_pixels(self.stored(top, left, height, width), self.nodata)

    def whole(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The whole image in [0, 1] (H, W, C) float32 and its no-data pixels."""
        info = self._info
        values = self.stored(0, 0, info.height, info.width)
        missing = nodata_pixels(values, self.nodata)
        ranges = self.ranges
        if ranges is None and values.dtype not in (np.uint8, np.bool_):
            ranges = _pooled(*image_range(values, missing), len(self.indices))
        return to_unit_range(values, ranges=ranges, missing=missing), missing

    def _image_ranges(self) -> Any:
        """The image's own range (module ``data.bands``), computed once: from every pixel when the image is
        small enough, else from a decimated read."""
        if not hasattr(self, "_own_range"):
            values = self._file.overview(self.indices, EXACT_RANGE_VALUES)
            self._own_range = _pooled(*image_range(values, nodata_pixels(values, self.nodata)), len(self.indices))
        return self._own_range

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_raster(
    path: str | os.PathLike[str], *, input_bands: InputBands | None = None, nodata: float | None = None
) -> RasterSource:
    """The ``RasterSource`` of a file (``data.sources.IMAGE_READERS`` opens rasters through this)."""
    return RasterSource(path, input_bands=input_bands, nodata=nodata)


def read_bands(
    path: str | os.PathLike[str], *, input_bands: InputBands | None = None, nodata: float | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A whole image by the band rule: (H, W, C) float32 in [0, 1] and its no-data pixels (or None)."""
    with RasterSource(path, input_bands=input_bands, nodata=nodata) as source:
        return source.whole()


def decode_bands(data: bytes, name: str, *, input_bands: InputBands, max_pixels: int | None = None) -> np.ndarray:
    """An uploaded image file's bytes read by a model's band rule (float32 in [0, 1], no-data as 0)."""
    from pixelwise.data.decode import decode_raw, is_tiff

    stream = io.BytesIO(data)
    names: tuple[str, ...] = ()
    nodata = None
    if is_tiff(stream):
        names, nodata = gdal_tags(stream)
    values = decode_raw(stream, name, max_pixels=max_pixels).pixels
    values = values[:, :, None] if values.ndim == 2 else values
    indices = band_indices(input_bands.selection, count=values.shape[2], names=names, file=name)
    values = values[:, :, indices]
    nodata = input_bands.nodata if input_bands.nodata is not None else nodata
    return to_unit_range(values, ranges=input_bands.ranges, missing=nodata_pixels(values, nodata))


def _pooled(low: float, high: float, bands: int) -> BandRanges:
    return BandRanges((low,) * bands, (high,) * bands)


def sample_bands(
    path: str | os.PathLike[str], *, input_bands: InputBands | None = None, values: int = EXACT_RANGE_VALUES
) -> tuple[np.ndarray, np.ndarray | None]:
    """The chosen bands as stored, whole or decimated (nearest) to about ``values`` values, and their no-data
    pixels: what the training set's band ranges are drawn from, without reading a huge scene whole."""
    with RasterSource(path, input_bands=input_bands) as source:
        stored = source._file.overview(source.indices, values)
        return stored, nodata_pixels(stored, source.nodata)
