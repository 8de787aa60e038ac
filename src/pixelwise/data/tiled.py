"""Tiled, pyramidal and very large TIFFs (BigTIFF, OME-TIFF, generic pyramidal TIFF) read by region.

Which TIFFs are read here rather than whole (``data.sources.READ_WHOLE``): every tiled TIFF, every TIFF with
a pyramid (reduced-resolution pages or SubIFDs), and any TIFF of more than ``LAZY_PIXELS`` pixels (strips
too). A plain small TIFF keeps the whole read of ``data.io``. A region decodes only the tiles (or strips) it
touches, through tifffile's own page decoder (``TiffPage.decode`` over ``FileHandle.read_segments``, what
tifffile's zarr store does inside), so neither zarr nor the whole image is needed; the last few decoded
tile rows are kept, because the predictor's overlapping bands read each tile row twice.

Values: uint8 images stay uint8 (the predictor scales them); 1-bit become float32 0/1; every other type
becomes float32 in [0, 1] by its robust range, the 0.5–99.5 percentiles as ``data.io.read_image`` takes
them, but measured without reading the whole image: over all pixels when the full resolution has at most
``EXACT_RANGE_PIXELS`` (then the values equal ``read_image``'s), else over the smallest pyramid level of at
least ``SAMPLE_PIXELS``, else over 64 tiles spread evenly over the image. One range serves every level.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.image_info import ImageInfo
from pixelwise.errors import InputError, PixelwiseError

# a TIFF above this many pixels (8192²) is read by region even when striped
LAZY_PIXELS = 1 << 26
# up to this many pixels (4096²) the range of a 16-bit or float image is measured on all of them
EXACT_RANGE_PIXELS = 1 << 24
# else on a pyramid level of at least this many pixels, or on SAMPLE_WINDOWS windows of SAMPLE_SIDE²
SAMPLE_PIXELS = 1 << 20
SAMPLE_WINDOWS = 8
SAMPLE_SIDE = 256
# decoded tile rows kept for the next read (a band of the predictor straddles two)
CACHED_TILE_ROWS = 2
TIFF_SUFFIXES = (".tif", ".tiff")
WSI_EXTRA = "pip install 'pixelwise[wsi]'"


def accepts(path: Path) -> bool:
    """A TIFF that is tiled, pyramidal or larger than ``LAZY_PIXELS``, holding one 2D grey or colour image."""
    from pixelwise.data.decode import is_tiff

    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return False
    try:
        if not is_tiff(path):
            return False
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            series: Any = tiff.series[0]
            layout = _layout(series)
            if layout is None:
                return False  # a stack or a 4D image: the whole reader refuses it in its words
            page = series.pages[0]
            height, width = layout[0], layout[1]
            return bool(page.is_tiled) or len(series.levels) > 1 or height * width > LAZY_PIXELS
    except Exception:
        return False  # a damaged file: the whole reader names the damage


def open_tiled(path: Path) -> TiledTiffSource:
    return TiledTiffSource(path)


class TiledTiffSource:
    """One level of a tiled or pyramidal TIFF, read by region; ``level(n)`` opens another level of it."""

    def __init__(self, path: Path, *, level: int = 0, value_range: tuple[float, float] | None = None) -> None:
        import tifffile

        self.name = str(path)
        self.path = Path(path)
        try:
            self._tiff: Any = tifffile.TiffFile(path)
        except Exception as error:
            raise InputError(f"{path}: cannot read the TIFF ({_first_line(error)}); the file is damaged") from None
        try:
            series = self._tiff.series[0]
            self._levels = list(series.levels)
            if not 0 <= level < len(self._levels):
                raise InputError(f"{path}: {_no_level(level, [_shape(s) for s in self._levels])}")
            self._series = self._levels[level]
            layout = _layout(self._series)
            if layout is None:
                raise InputError(
                    f"{path}: a TIFF of shape {self._series.shape} (axes {self._series.axes}) is not one 2D grey or "
                    "RGB image; save one plane or three channels"
                )
            height, width, bands, self._planes = layout
            self._pages: list[Any] = list(self._series.pages) if self._planes else [self._series.pages[0]]
            keyframe = self._pages[0].keyframe
            self._stored = np.dtype(self._series.dtype)
            self._alpha = bands in (2, 4) and any(int(extra) in (1, 2) for extra in keyframe.extrasamples)
            bands -= int(self._alpha)
            if bands not in (1, 3):
                raise InputError(
                    f"{path}: an image of {bands} channels; pixelwise reads grey or RGB images: save one channel or three"
                )
            base = _mpp(self._tiff, self._levels[0].pages[0])
            full_width = _shape(self._levels[0])[1]
            self.level_index = level
            self._info = ImageInfo(
                height,
                width,
                bands,
                "uint8" if self._stored == np.uint8 else "float32",
                levels=tuple(_shape(s) for s in self._levels),
                mpp=None if base is None else base * full_width / width,
            )
            self._cache: OrderedDict[tuple[int, int], dict[int, np.ndarray | None]] = OrderedDict()
            self._range = value_range if value_range is not None else self._value_range()
        except BaseException:
            self._tiff.close()
            raise

    @property
    def info(self) -> ImageInfo:
        return self._info

    def level(self, index: int) -> TiledTiffSource:
        """The same image at pyramid level ``index`` (0: full resolution), with the same value scaling."""
        return TiledTiffSource(self.path, level=index, value_range=self._range)

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """(h, w, C) uint8, or float32 in [0, 1], for a region inside the image."""
        return self._scaled(self._raw(top, left, height, width))

    def _raw(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """A region in its stored type (alpha dropped)."""
        height = max(0, min(height, self._info.height - top))
        width = max(0, min(width, self._info.width - left))
        planes = [self._page_region(index, top, left, height, width) for index in range(len(self._pages))]
        stored = planes[0] if len(planes) == 1 else np.concatenate(planes, axis=2)
        return stored[:, :, :-1] if self._alpha else stored

    def close(self) -> None:
        self._cache.clear()
        self._tiff.close()

    def __enter__(self) -> TiledTiffSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- decoding -----------------------------------------------------------------------------------------

    def _page_region(self, index: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Rows [top, top + height) × columns [left, left + width) of page ``index`` (one channel of a
        channel-per-page image, or all samples), (h, w, S) in the stored type."""
        page = self._pages[index]
        keyframe = page.keyframe
        samples = int(keyframe.samplesperpixel)
        separate = samples > 1 and int(keyframe.planarconfig) == 2
        out = np.zeros((height, width, samples), self._stored)
        if height == 0 or width == 0:
            return out
        tile_height, tile_width = _segment_size(keyframe)
        across = math.ceil(int(keyframe.imagewidth) / tile_width)
        down = math.ceil(int(keyframe.imagelength) / tile_height)
        first_row, last_row = top // tile_height, (top + height - 1) // tile_height
        first_column, last_column = left // tile_width, (left + width - 1) // tile_width
        for row in range(first_row, last_row + 1):
            for plane in range(samples if separate else 1):
                segments = self._tile_row(index, page, row, plane, across, down, first_column, last_column)
                for column, segment in segments.items():
                    self._paste(
                        out, segment, plane if separate else None, row, column, (tile_height, tile_width), top, left
                    )
        return out

    def _tile_row(
        self, index: int, page: Any, row: int, plane: int, across: int, down: int, first: int, last: int
    ) -> dict[int, np.ndarray | None]:
        """The decoded segments of one tile row (columns ``first``..``last``), from the cache where kept."""
        key = (index, plane * down + row)
        cached = self._cache.get(key)
        if cached is not None and all(column in cached for column in range(first, last + 1)):
            self._cache.move_to_end(key)
            return cached
        wanted = [plane * down * across + row * across + column for column in range(first, last + 1)]
        decoded: dict[int, np.ndarray | None] = dict(cached) if cached is not None else {}
        keyframe = page.keyframe
        arguments: dict[str, Any] = {}
        if getattr(page, "jpegtables", None) is not None:
            arguments["jpegtables"] = page.jpegtables
        if getattr(keyframe, "jpegheader", None) is not None:
            arguments["jpegheader"] = keyframe.jpegheader
        offsets, counts = page.dataoffsets, page.databytecounts
        try:
            segments = self._tiff.filehandle.read_segments(
                [offsets[i] for i in wanted], [counts[i] for i in wanted], indices=wanted, sort=True
            )
            for data, segment_index in segments:
                column = segment_index % across
                if data is None or len(data) == 0:
                    decoded[column] = None  # a sparse tile: the fill value
                    continue
                decoded[column] = keyframe.decode(data, segment_index, **arguments)[0]
        except Exception as error:
            raise _decode_error(self.path, self.level_index, row, error) from None
        self._cache[key] = decoded
        while len(self._cache) > CACHED_TILE_ROWS * len(self._pages):
            self._cache.popitem(last=False)
        return decoded

    @staticmethod
    def _paste(
        out: np.ndarray,
        segment: np.ndarray | None,
        plane: int | None,
        row: int,
        column: int,
        size: tuple[int, int],
        top: int,
        left: int,
    ) -> None:
        """Copy the part of a decoded segment (1, h, w, S) that falls inside ``out`` (whose corner is
        ``top``, ``left``)."""
        if segment is None:
            return
        pixels = segment.reshape(tuple(segment.shape)[-3:])  # (h, w, S) of this segment
        segment_top, segment_left = row * size[0], column * size[1]
        r0, c0 = max(top, segment_top), max(left, segment_left)
        r1 = min(top + out.shape[0], segment_top + pixels.shape[0])
        c1 = min(left + out.shape[1], segment_left + pixels.shape[1])
        if r1 <= r0 or c1 <= c0:
            return
        piece = pixels[r0 - segment_top : r1 - segment_top, c0 - segment_left : c1 - segment_left]
        if plane is None:
            out[r0 - top : r1 - top, c0 - left : c1 - left] = piece
        else:
            out[r0 - top : r1 - top, c0 - left : c1 - left, plane] = piece[:, :, 0]

    # --- values -------------------------------------------------------------------------------------------

    def _scaled(self, stored: np.ndarray) -> np.ndarray:
        if stored.dtype == np.uint8:
            return stored
        if stored.dtype == np.bool_:
            return stored.astype(np.float32)
        low, high = self._range or (0.0, 0.0)
        if high <= low:
            return np.zeros(stored.shape, np.float32)
        # as data.bands.apply_ranges (what data.io reads with): float64 arithmetic, clipped, NaN to 0
        scaled = np.clip((stored.astype(np.float64) - low) / (high - low), 0.0, 1.0)
        return np.nan_to_num(scaled, nan=0.0).astype(np.float32)

    def _value_range(self) -> tuple[float, float] | None:
        """(low, high) that map to 0 and 1 (see the module docstring); None for uint8 and 1-bit images."""
        if self._stored in (np.uint8, np.bool_):
            return None
        full = self if self.level_index == 0 else self.level(0)
        try:
            sample = _range_sample(full, self._levels)
        finally:
            if full is not self:
                full.close()
        from pixelwise.data.bands import image_range  # the 0.5-99.5 percentiles, as data.io

        return image_range(sample)


def _range_sample(full: TiledTiffSource, levels: list[Any]) -> np.ndarray:
    """Stored values to measure the range on: all of the full resolution, a small level, or spread windows."""
    height, width = full.info.height, full.info.width
    if height * width <= EXACT_RANGE_PIXELS:
        return full._raw(0, 0, height, width)
    for index in range(len(levels) - 1, 0, -1):
        level_height, level_width = _shape(levels[index])
        if level_height * level_width >= SAMPLE_PIXELS:
            if level_height * level_width > EXACT_RANGE_PIXELS:
                break
            with TiledTiffSource(full.path, level=index, value_range=(0.0, 1.0)) as small:
                return small._raw(0, 0, level_height, level_width)
    rows = np.linspace(0, max(0, height - SAMPLE_SIDE), SAMPLE_WINDOWS).astype(int)
    columns = np.linspace(0, max(0, width - SAMPLE_SIDE), SAMPLE_WINDOWS).astype(int)
    return np.concatenate([full._raw(top, left, SAMPLE_SIDE, SAMPLE_SIDE).ravel() for top in rows for left in columns])


# --- layout and metadata ------------------------------------------------------------------------------------


def _layout(series: Any) -> tuple[int, int, int, bool] | None:
    """(height, width, bands, one page per channel) of a series that is one 2D image (YX, YXS, SYX, CYX
    with at most 4 channels, length-1 axes aside); None for a stack, a time series or a volume."""
    axes = "".join(axis for axis, size in zip(series.axes, series.shape, strict=True) if size != 1 or axis in "YX")
    shape = dict(zip(series.axes, series.shape, strict=True))
    height, width = int(shape.get("Y", 0)), int(shape.get("X", 0))
    if axes == "YX":
        return height, width, 1, False
    if axes == "YXS" and shape["S"] <= 4:
        return height, width, int(shape["S"]), False
    if axes == "SYX" and shape["S"] <= 4:
        return height, width, int(shape["S"]), False
    if axes == "CYX" and shape["C"] <= 4:
        # channels stored as pages (OME-TIFF), or as separate samples of one page
        return height, width, int(shape["C"]), len(series.pages) == shape["C"]
    return None


def _shape(series: Any) -> tuple[int, int]:
    shape = dict(zip(series.axes, series.shape, strict=True))
    return int(shape["Y"]), int(shape["X"])


def _segment_size(keyframe: Any) -> tuple[int, int]:
    """(rows, columns) of the file's tiles, or of its strips (full width)."""
    if keyframe.is_tiled:
        return int(keyframe.tilelength), int(keyframe.tilewidth)
    return min(int(keyframe.rowsperstrip) or int(keyframe.imagelength), int(keyframe.imagelength)), int(
        keyframe.imagewidth
    )


def _mpp(tiff: Any, page: Any) -> float | None:
    """Microns per pixel of the full resolution where the file says: OME's PhysicalSizeX, Aperio's MPP, or
    resolution tags in centimetres (in inches only above 1000 dpi: 72 or 300 dpi is a default, not a scale)."""
    with contextlib.suppress(Exception):
        if tiff.is_ome and tiff.ome_metadata:
            found = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tiff.ome_metadata)
            unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', tiff.ome_metadata)
            if found:
                factor = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4}.get(unit.group(1) if unit else "µm")
                if factor is not None:
                    return float(found.group(1)) * factor
    with contextlib.suppress(Exception):
        if tiff.is_svs:
            import tifffile

            svs_metadata: Any = getattr(tifffile, "svs_description_metadata")  # noqa: B009 - untyped in tifffile
            return float(svs_metadata(page.description)["MPP"])
    with contextlib.suppress(Exception):
        x_resolution = page.tags["XResolution"].value
        pixels_per_unit = x_resolution[0] / x_resolution[1]
        resolution_unit = int(page.tags["ResolutionUnit"].value)
        if pixels_per_unit > 0 and resolution_unit == 3:
            return 1e4 / pixels_per_unit
        if pixels_per_unit > 1000 and resolution_unit == 2:
            return 25400 / pixels_per_unit
    return None


def _no_level(level: int, shapes: list[tuple[int, int]]) -> str:
    listed = ", ".join(f"{index}: {width} × {height}" for index, (height, width) in enumerate(shapes))
    return (
        f"there is no level {level}; the image has {len(shapes)} (level {listed}); give --level 0 to {len(shapes) - 1}"
    )


def _decode_error(path: Path, level: int, row: int, error: BaseException) -> PixelwiseError:
    """One line for a tile that could not be read: a missing codec, or damage."""
    text = _first_line(error)
    if "imagecodecs" in text:
        return InputError(f"{path}: its tiles need a codec tifffile lacks ({text}); install it: {WSI_EXTRA}")
    return InputError(f"{path}: a tile of row {row} (level {level}) cannot be decoded ({text}); the file is damaged")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or error.__class__.__name__
