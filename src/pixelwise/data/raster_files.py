"""Raster files: what a file holds (its header) and the readers of its stored values, by window.

``raster_info(path)``: size, bands (alpha left out), stored type, georeference, band names and no-data value
of any image file, from its header. ``open_file(path)`` gives a reader of stored values by window:

- GeoTIFF and other GDAL rasters (``.jp2``) through rasterio, the ``[geo]`` extra, lazily by window
  (``rasterio.windows``); without rasterio a GeoTIFF is read by tifffile like any TIFF and its
  georeference is lost, said once in a note; a ``.jp2`` needs rasterio;
- TIFF of any number of samples through tifffile (``data.decode``), decoded whole; band names and no-data
  from GDAL's tags when a GDAL tool wrote them;
- ``.npy`` arrays (H, W) or (H, W, C), memory-mapped.

GDAL is told never to write beside an input (``GDAL_PAM_ENABLED=NO``: no ``.aux.xml`` files).
"""

from __future__ import annotations

import importlib
import io
import os
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.image_info import Georeference, ImageInfo
from pixelwise.errors import InputError, PixelwiseError

GDAL_SUFFIXES: frozenset[str] = frozenset({".jp2"})
ARRAY_SUFFIXES: frozenset[str] = frozenset({".npy"})
RASTER_SUFFIXES = GDAL_SUFFIXES | ARRAY_SUFFIXES
GEO_EXTRA = "pip install 'pixelwise[geo]'"
# TIFF tags: GeoKeyDirectory (a GeoTIFF), GDAL's metadata (band names) and no-data value
_GEOKEYS, _GDAL_METADATA, _GDAL_NODATA = 34735, 42112, 42113
# GDAL writes nothing beside the files it reads
GDAL_OPTIONS = {"GDAL_PAM_ENABLED": "NO"}
_told_without_rasterio: list[bool] = []


def rasterio_module() -> Any | None:
    """rasterio, or None where the ``[geo]`` extra is not installed."""
    try:
        return importlib.import_module("rasterio")
    except ImportError:
        return None


def require_rasterio(what: str) -> Any:
    module = rasterio_module()
    if module is None:
        raise PixelwiseError(f"{what} needs rasterio: {GEO_EXTRA}")
    return module


# --- headers -------------------------------------------------------------------------------------------


def raster_info(path: str | os.PathLike[str]) -> ImageInfo:
    """What a file holds, from its header: size, bands (alpha left out), stored type, georeference, band names,
    no-data value. PNG, JPEG and BMP are grey (1) or colour (3)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return ArrayFile.header(file)
    if suffix in GDAL_SUFFIXES or _geotiff_with_rasterio(file):
        with GdalFile(file) as raster:
            return raster.info
    if _is_tiff(file):
        return _tiff_info(file)
    from pixelwise.data.decode import header_size

    height, width = header_size(file, str(file))
    with _pillow_image(file) as image:
        mode = image.mode
    grey = mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16")
    dtype = "uint16" if mode.startswith("I;16") else {"I": "int32", "F": "float32"}.get(mode, "uint8")
    return ImageInfo(height, width, 1 if grey else 3, dtype)


def is_raster(path: Path) -> bool:
    """Whether ``RasterSource`` reads this file (the image registry's question): ``.npy``, GDAL formats, and
    TIFFs that are georeferenced, carry a no-data value, or hold a band count other than grey or RGB."""
    suffix = path.suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return True
    if not _is_tiff(path):
        return False
    if _geotiff_with_rasterio(path):
        return True  # read by window through GDAL, overviews and all
    try:
        info = _tiff_info(path)
        geotiff = _has_geokeys(path)
    except Exception:  # a damaged file: the whole-image reader says what is wrong with it
        return False
    return geotiff or info.nodata is not None or info.bands not in (1, 3)


def georeferenced(path: Path) -> bool:
    """Whether the file carries a georeference this installation can read (rasterio for GeoTIFFs)."""
    if path.suffix.lower() not in (".tif", ".tiff", *GDAL_SUFFIXES):
        return False
    try:
        return raster_info(path).georeference is not None
    except PixelwiseError:
        return False


def same_place(first: Georeference, second: Georeference) -> bool:
    """Whether two georeferences put pixels at the same places: the same CRS and transforms equal to a
    millionth of a pixel."""
    rasterio = rasterio_module()
    if rasterio is not None:
        from rasterio.crs import CRS

        same_crs = CRS.from_user_input(first.crs) == CRS.from_user_input(second.crs)
    else:  # pragma: no cover - without rasterio no georeference is read
        same_crs = first.crs == second.crs
    pixel = max(abs(first.transform[0]), abs(first.transform[4]), 1e-12)
    close = all(abs(a - b) <= 1e-6 * pixel for a, b in zip(first.transform, second.transform, strict=True))
    return same_crs and close


# --- the files -----------------------------------------------------------------------------------------


def open_file(path: Path) -> GdalFile | ArrayFile:
    from pixelwise.data.paths import check_regular_file

    check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return ArrayFile.load(path)
    if suffix in GDAL_SUFFIXES:
        require_rasterio(f"{path}: a {suffix} raster")
        return GdalFile(path)
    if _geotiff_with_rasterio(path):
        return GdalFile(path)
    return ArrayFile.tiff(path)


class GdalFile:
    """A raster opened by rasterio, read by window."""

    def __init__(self, path: Path) -> None:
        rasterio = require_rasterio(f"{path}")
        self.path = path
        try:
            # scoped, not held: environments are a per-thread stack that sources closed in any order would upset
            with rasterio.Env(**GDAL_OPTIONS), warnings.catch_warnings():
                # a raster without a georeference is still an image: it is read without one
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.dataset = rasterio.open(path)
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(
                f"{path}: cannot read the raster ({reason}); the file is damaged or not a raster"
            ) from None
        dataset = self.dataset
        dtypes = set(dataset.dtypes)
        self.dtype = np.result_type(*dtypes) if len(dtypes) > 1 else np.dtype(dataset.dtypes[0])
        crs = dataset.crs
        georeference = None
        if crs is not None:
            a, b, c, d, e, f = (float(value) for value in tuple(dataset.transform)[:6])
            georeference = Georeference(crs.to_string(), (a, b, c, d, e, f))
        names = tuple(description or "" for description in dataset.descriptions)
        self.info = ImageInfo(
            dataset.height,
            dataset.width,
            dataset.count,
            self.dtype.name,
            georeference=georeference,
            band_names=names if any(names) else (),
            nodata=None if dataset.nodata is None else float(dataset.nodata),
        )

    def read(self, indices: list[int], top: int, left: int, height: int, width: int) -> np.ndarray:
        from rasterio.windows import Window

        window = Window(left, top, width, height)
        try:
            values = self.dataset.read([index + 1 for index in indices], window=window, out_dtype=self.dtype)
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(
                f"{self.path}: cannot read rows {top}..{top + height} ({reason}); the file is damaged"
            ) from None
        return np.moveaxis(values, 0, -1)

    def overview(self, indices: list[int], values: int) -> np.ndarray:
        """The chosen bands whole, or decimated (nearest) to about ``values`` values."""
        height, width = self.info.height, self.info.width
        factor = max(1.0, (height * width * len(indices) / values) ** 0.5)
        if factor == 1.0:
            return self.read(indices, 0, 0, height, width)
        shape = (len(indices), max(1, int(height / factor)), max(1, int(width / factor)))
        decimated = self.dataset.read([index + 1 for index in indices], out_shape=shape, out_dtype=self.dtype)
        return np.moveaxis(decimated, 0, -1)

    def close(self) -> None:
        if not self.dataset.closed:
            self.dataset.close()

    def __enter__(self) -> GdalFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ArrayFile:
    """An (H, W, C) array in memory or memory-mapped (``.npy``; a TIFF decoded whole)."""

    def __init__(self, pixels: np.ndarray, info: ImageInfo) -> None:
        self.pixels = pixels
        self.info = info

    @classmethod
    def load(cls, path: Path) -> ArrayFile:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as error:
            raise InputError(f"{path}: cannot read the array ({error}); save it with numpy.save") from None
        return cls(_three_axes(array, path), cls.header(path))

    @staticmethod
    def header(path: Path) -> ImageInfo:
        try:
            with path.open("rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(handle)
        except Exception as error:
            raise InputError(f"{path}: not a numpy .npy array ({error}); save it with numpy.save") from None
        if len(shape) not in (2, 3) or min(shape[:2], default=0) < 1 or dtype.hasobject or dtype.names:
            raise InputError(
                f"{path}: an array of shape {shape} and type {dtype}; give a numeric (H, W) or (H, W, C) array"
            )
        return ImageInfo(int(shape[0]), int(shape[1]), int(shape[2]) if len(shape) == 3 else 1, dtype.name)

    @classmethod
    def tiff(cls, path: Path) -> ArrayFile:
        from pixelwise.data.decode import decode_raw

        info = _tiff_info(path)
        pixels = decode_raw(path, str(path)).pixels
        return cls(_three_axes(pixels, path), info)

    def read(self, indices: list[int], top: int, left: int, height: int, width: int) -> np.ndarray:
        window = self.pixels[top : top + height, left : left + width]
        return (
            np.ascontiguousarray(window[:, :, indices])
            if indices != list(range(window.shape[2]))
            else np.asarray(window)
        )

    def overview(self, indices: list[int], values: int) -> np.ndarray:
        height, width = self.info.height, self.info.width
        step = max(1, int(np.ceil((height * width * len(indices) / values) ** 0.5)))
        return np.asarray(self.pixels[::step, ::step][:, :, indices])

    def close(self) -> None:
        pass


def _three_axes(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"{path}: an array of shape {array.shape}; give an (H, W) or (H, W, C) image")
    return array


# --- TIFF tags -------------------------------------------------------------------------------------------


def _is_tiff(path: Path) -> bool:
    from pixelwise.data.decode import is_tiff

    try:
        return path.suffix.lower() in (".tif", ".tiff") and is_tiff(path)
    except OSError:
        return False


def _has_geokeys(path: Path) -> bool:
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        return _GEOKEYS in _first_page_tags(tiff)


def _geotiff_with_rasterio(path: Path) -> bool:
    """A GeoTIFF that rasterio reads here; without rasterio, a note that its georeference is lost."""
    if not _is_tiff(path):
        return False
    try:
        geotiff = _has_geokeys(path)
    except Exception:
        return False
    if geotiff and rasterio_module() is None:
        if not _told_without_rasterio:
            _told_without_rasterio.append(True)
            warnings.warn(
                f"{path} is a GeoTIFF; without rasterio its georeference is not read and the masks will not be "
                f"georeferenced ({GEO_EXTRA})",
                UserWarning,
                stacklevel=4,
            )
        return False
    return geotiff


def _tiff_info(path: Path) -> ImageInfo:
    """A TIFF's header through tifffile: bands (alpha left out), type, GDAL's band names and no-data value."""
    import tifffile

    from pixelwise.data.decode import header_size

    height, width = header_size(path, str(path))  # pages, damaged tags, memory: the decoder's own refusals
    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        page = tiff.pages.first
        samples = int(np.prod(series.shape, dtype=np.int64)) // max(height * width, 1)
        alpha = any(int(extra) in (1, 2) for extra in getattr(page, "extrasamples", ()))
        bands = samples - (1 if alpha and samples > 1 else 0)
        names, nodata = _tags(_first_page_tags(tiff))
        return ImageInfo(
            height,
            width,
            bands,
            np.dtype(series.dtype).name,
            band_names=names if len(names) == bands else (),
            nodata=nodata,
        )


def gdal_tags(stream: io.BytesIO) -> tuple[tuple[str, ...], float | None]:
    import tifffile

    position = stream.tell()
    try:
        with tifffile.TiffFile(stream) as tiff:
            return _tags(_first_page_tags(tiff))
    except Exception:
        return (), None
    finally:
        stream.seek(position)


def _tags(tags: Any) -> tuple[tuple[str, ...], float | None]:
    """(band names, no-data value) from GDAL's TIFF tags, where a GDAL tool wrote them."""
    nodata = None
    if _GDAL_NODATA in tags:
        try:
            nodata = float(str(tags[_GDAL_NODATA].value).strip("\x00 "))
        except ValueError:
            nodata = None
    names: dict[int, str] = {}
    if _GDAL_METADATA in tags:
        try:
            root = ElementTree.fromstring(str(tags[_GDAL_METADATA].value))
            for item in root.iter("Item"):
                if item.get("role") == "description" and item.get("sample") is not None:
                    names[int(item.get("sample") or 0)] = (item.text or "").strip()
        except (ElementTree.ParseError, ValueError):
            names = {}
    ordered = tuple(names.get(index, "") for index in range(max(names) + 1)) if names else ()
    return ordered, nodata


def _first_page_tags(tiff: Any) -> Any:
    """The tags of a TIFF's first page (tifffile's TiffPage; its typing also allows a frame)."""
    return tiff.pages.first.tags


def _pillow_image(path: Path) -> Any:
    from PIL import Image

    from pixelwise.data.decode import PILLOW_FORMATS

    return Image.open(path, formats=PILLOW_FORMATS)
