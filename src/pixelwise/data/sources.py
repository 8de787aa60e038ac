"""Image sources: the pixels of an image, by region, and what a writer needs to know about it.

Everything that predicts or segments reads an image through an ``ImageSource``: ``info`` (an ``ImageInfo``:
size, bands, stored type, pyramid levels, resolution, georeference) and ``read(top, left, height, width)``
-> (h, w, C) pixels the predictor takes (uint8, or float32 in [0, 1]). Regions let an image larger than the
memory be read a band at a time; an image that fits is simply held whole (``ArraySource``).

``open_image(path)`` picks a reader from ``IMAGE_READERS``, the one registry of image formats: the first
reader whose ``accepts(path)`` is true opens the file. A new format (tiled TIFF, a slide, a GeoTIFF) is one
``ImageReader`` in its own module and one line in the registry. ``READ_WHOLE``, the fallback, decodes the
file whole with ``data.io.read_image``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pixelwise.data.image_info import Affine as Affine
from pixelwise.data.image_info import Georeference as Georeference
from pixelwise.data.image_info import ImageInfo
from pixelwise.errors import PixelwiseError


@runtime_checkable
class ImageSource(Protocol):
    """The pixels of one image by region.

    ``name`` names the image in messages (its path; empty for an array in memory). ``read(top, left, height, width)`` returns (h, w, C)
    pixels, uint8 or float32 in [0, 1] (what ``Predictor`` takes), for a region inside the image. ``close``
    releases open files; a source is also a context manager.
    """

    name: str

    @property
    def info(self) -> ImageInfo: ...

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray: ...

    def close(self) -> None: ...


class ArraySource:
    """An image held in memory, (H, W) or (H, W, C), uint8 / bool or float in [0, 1]; regions are views.

    >>> source = ArraySource(np.arange(12, dtype=np.uint8).reshape(3, 4))
    >>> source.info.height, source.info.width, source.info.bands, source.info.dtype
    (3, 4, 1, 'uint8')
    >>> source.read(1, 2, 2, 2)[:, :, 0].tolist()
    [[6, 7], [10, 11]]
    """

    def __init__(self, image: np.ndarray, *, name: str = "", info: ImageInfo | None = None) -> None:
        pixels = np.asarray(image)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.ndim != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
            prefix = f"{name}: " if name else ""
            raise PixelwiseError(f"{prefix}expected an (H, W) or (H, W, C) image, got shape {np.shape(image)}")
        self.pixels = pixels
        self.name = name
        height, width, bands = pixels.shape
        self._info = info or ImageInfo(height, width, bands, pixels.dtype.name)

    @property
    def info(self) -> ImageInfo:
        return self._info

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        return self.pixels[top : top + height, left : left + width]

    def close(self) -> None:
        pass

    def __enter__(self) -> ArraySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def as_source(image: np.ndarray | ImageSource, *, name: str = "") -> ImageSource:
    """``image`` itself when it is a source, else an ``ArraySource`` over it."""
    return image if isinstance(image, ImageSource) else ArraySource(image, name=name)


@dataclass(frozen=True)
class ImageReader:
    """One image format: ``accepts(path)`` says whether it reads the file (from its name or first bytes,
    cheaply), ``open(path)`` gives its ``ImageSource`` (or a PixelwiseError naming the file)."""

    name: str
    accepts: Callable[[Path], bool]
    open: Callable[[Path], ImageSource]


def _read_whole(path: Path) -> ImageSource:
    from pixelwise.data.io import read_image

    return ArraySource(read_image(path), name=str(path))


def _lazy(module: str, function: str) -> Callable[[Path], Any]:
    """``module.function(path)``, the module imported at the first call: reading formats costs nothing until
    an image is opened."""

    def call(path: Path) -> Any:
        return getattr(importlib.import_module(module), function)(path)

    return call


def _is_raster(path: Path) -> bool:
    from pixelwise.data.raster_files import is_raster

    return is_raster(path)


def _open_raster(path: Path) -> ImageSource:
    from pixelwise.data.rasters import open_raster

    return open_raster(path)


# the fallback: any file data.io reads, decoded whole
READ_WHOLE = ImageReader("whole", accepts=lambda path: True, open=_read_whole)
# GeoTIFF and GDAL rasters by window, multi-band and no-data TIFFs, .npy (data.rasters); first, so that a
# georeferenced file keeps its georeference (and a GDAL window read) however large or tiled it is
RASTERS = ImageReader("raster", accepts=_is_raster, open=_open_raster)
# vendor whole-slide formats through tiffslide (the [wsi] extra): data/slides.py
READ_SLIDE = ImageReader(
    "slide", accepts=_lazy("pixelwise.data.slides", "accepts"), open=_lazy("pixelwise.data.slides", "open_slide")
)
# tiled, pyramidal and very large grey or RGB TIFFs by region, through tifffile: data/tiled.py
READ_TILED = ImageReader(
    "tiled-tiff", accepts=_lazy("pixelwise.data.tiled", "accepts"), open=_lazy("pixelwise.data.tiled", "open_tiled")
)
# first match wins; READ_WHOLE stays last
IMAGE_READERS: list[ImageReader] = [RASTERS, READ_SLIDE, READ_TILED, READ_WHOLE]


def open_image(path: str | os.PathLike[str]) -> ImageSource:
    """The ``ImageSource`` of an image file, through the first reader of ``IMAGE_READERS`` that accepts it."""
    from pixelwise.data.paths import check_regular_file

    file = Path(path)
    check_regular_file(file)  # before any reader peeks at its first bytes: a named pipe would block it
    for reader in IMAGE_READERS:
        if reader.accepts(file):
            return reader.open(file)
    raise PixelwiseError(f"{file}: no reader takes this file; give a PNG, JPEG, TIFF or BMP image")  # pragma: no cover
