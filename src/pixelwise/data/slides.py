"""Whole-slide images of the microscope vendors (Aperio SVS, Hamamatsu NDPI, Leica SCN, Ventana BIF) read by
region through tiffslide, an optional extra (``pip install 'pixelwise[wsi]'``; a slide without it is one
line naming the extra).

tiffslide reads the vendors' pyramids and resolutions (``tiffslide.mpp-x``) and decodes only the tiles a
region touches (its zarr store over tifffile). Slides are 8-bit RGB and stay uint8 (alpha, where a slide
has it, is dropped). MIRAX (``.mrxs``, a folder of ``.dat`` files) needs OpenSlide, which pixelwise does not
use: convert such a slide to a pyramidal OME-TIFF (``bfconvert``, ``vips tiffsave --tile --pyramid``). Generic
tiled and pyramidal TIFFs need no extra: ``data.tiled`` reads them with tifffile alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.image_info import ImageInfo
from pixelwise.data.io import SLIDE_SUFFIXES
from pixelwise.errors import InputError, PixelwiseError

WSI_EXTRA = "pip install 'pixelwise[wsi]'"


def accepts(path: Path) -> bool:
    return path.suffix.lower() in SLIDE_SUFFIXES


def open_slide(path: Path) -> SlideSource:
    return SlideSource(path)


def _tiffslide(path: Path) -> Any:
    try:
        import tiffslide
    except ImportError:
        raise PixelwiseError(
            f"{path}: whole-slide images ({path.suffix}) are read with tiffslide, which is not installed: {WSI_EXTRA}"
        ) from None
    return tiffslide


class SlideSource:
    """One level of a whole-slide image; ``level(n)`` opens another level of it."""

    def __init__(self, path: Path, *, level: int = 0) -> None:
        tiffslide = _tiffslide(path)
        self.name = str(path)
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{path}: no such file; check the path")
        try:
            self._slide = tiffslide.TiffSlide(path)
        except Exception as error:
            raise InputError(f"{path}: cannot read the slide ({_first_line(error)}); the file is damaged") from None
        try:
            dimensions = [(int(height), int(width)) for width, height in self._slide.level_dimensions]
            if not 0 <= level < len(dimensions):
                listed = ", ".join(f"{index}: {width} × {height}" for index, (height, width) in enumerate(dimensions))
                raise InputError(
                    f"{path}: there is no level {level}; the slide has {len(dimensions)} (level {listed}); "
                    f"give --level 0 to {len(dimensions) - 1}"
                )
            self.level_index = level
            self._array = self._slide.zarr_group[str(level)]
            shape = tuple(int(size) for size in self._array.shape)
            if len(shape) != 3 or shape[2] not in (3, 4) or np.dtype(self._array.dtype) != np.uint8:
                raise InputError(
                    f"{path}: a slide of shape {shape} and type {self._array.dtype}; pixelwise reads 8-bit RGB slides"
                )
            height, width = dimensions[level]
            base = self._slide.properties.get("tiffslide.mpp-x")
            self._info = ImageInfo(
                height,
                width,
                3,
                "uint8",
                levels=tuple(dimensions),
                mpp=float(base) * dimensions[0][1] / width if base else None,
            )
        except BaseException:
            self._slide.close()
            raise

    @property
    def info(self) -> ImageInfo:
        return self._info

    def level(self, index: int) -> SlideSource:
        return SlideSource(self.path, level=index)

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        try:
            pixels = np.asarray(self._array[top : top + height, left : left + width])
        except Exception as error:
            raise InputError(
                f"{self.path}: the region at row {top}, column {left} (level {self.level_index}) cannot be decoded "
                f"({_first_line(error)}); the slide is damaged"
            ) from None
        return pixels[:, :, :3]

    def close(self) -> None:
        self._slide.close()

    def __enter__(self) -> SlideSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or error.__class__.__name__
