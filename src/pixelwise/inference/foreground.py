"""Where an image has something to segment: a cheap foreground (tissue) mask, so that the predictor skips the
tiles of empty background (``Predictor.stream(..., tile_filter=...)``).

The mask is made on a thumbnail of about ``THUMBNAIL_SIDE`` pixels a side, read from the coarsest pyramid
level that is at least that large (a slide's own overview), or, for an image without one, by reading the
image in bands and keeping every k-th pixel (a pass over the file, without the network). Then Otsu's
threshold (on a 256-bin histogram, in numpy: the ONNX-only install has no scikit-image or SciPy):

- RGB (bright-field slides): on the saturation; tissue is coloured, glass is white or grey. Only when the
  unsaturated side is bright (mean value ≥ ``GLASS_BRIGHTNESS``) is it taken as background; an image whose
  unsaturated part is dark (an aerial photo's roads, a black scan border) has no background to skip.
- grey: on the intensity; the background is the side most of the thumbnail's border falls on (at least
  ``BORDER_SHARE`` of it), since a slide or a mosaic is framed by its background; otherwise none.

The mask is widened by ``MARGIN`` thumbnail pixels, so a tile that touches tissue runs; a tile runs when any
mask pixel under it is foreground. Pixels no run tile covers get class 0 (the background class).
``find_foreground`` gives None where no background was found: then every tile runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pixelwise.data.pyramid import Pyramid
from pixelwise.data.sources import ImageSource

THUMBNAIL_SIDE = 1024
GLASS_BRIGHTNESS = 0.75
MIN_SATURATION = 0.04
BORDER_SHARE = 0.75
MARGIN = 2
_BAND_ROWS = 256


@dataclass(frozen=True)
class Foreground:
    """A foreground mask (``mask``, thumbnail scale) over an image of ``height`` × ``width``."""

    mask: np.ndarray
    height: int
    width: int

    @property
    def fraction(self) -> float:
        return float(self.mask.mean())

    def wants(self, top: int, left: int, height: int, width: int) -> bool:
        """Whether the tile at (``top``, ``left``) of ``height`` × ``width`` touches the foreground."""
        rows, columns = self.mask.shape
        r0, r1 = (top * rows) // self.height, -((-(top + height) * rows) // self.height)
        c0, c1 = (left * columns) // self.width, -((-(left + width) * columns) // self.width)
        return bool(self.mask[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)].any())


def find_foreground(source: ImageSource, *, side: int = THUMBNAIL_SIDE) -> Foreground | None:
    """The foreground of ``source`` (see the module docstring); None when it has no background to skip."""
    picture = thumbnail(source, side=side)
    values = picture.astype(np.float32) / np.float32(255) if picture.dtype == np.uint8 else picture
    mask = _rgb_foreground(values) if values.shape[2] == 3 else _grey_foreground(values[:, :, 0])
    if mask is None:
        return None
    return Foreground(_widened(mask, MARGIN), source.info.height, source.info.width)


def thumbnail(source: ImageSource, *, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """The image at about ``side`` pixels on its longer side (never upsampled): a pyramid level, or every
    k-th pixel of a band-by-band read."""
    info = source.info
    level = _coarsest_level(info.levels, side)
    if level and isinstance(source, Pyramid):
        small = source.level(level)
        try:
            return _strided(small, side)
        finally:
            small.close()
    return _strided(source, side)


def _coarsest_level(levels: tuple[tuple[int, int], ...], side: int) -> int:
    """The index of the smallest level whose longer side is still at least ``side`` (0 when none is)."""
    big_enough = [index for index, (height, width) in enumerate(levels) if max(height, width) >= side]
    return big_enough[-1] if big_enough else 0


def _strided(source: ImageSource, side: int) -> np.ndarray:
    """Every k-th pixel of ``source`` (k so that the longer side is about ``side``), read a band at a time."""
    height, width = source.info.height, source.info.width
    step = max(1, math.ceil(max(height, width) / side))
    rows = step * math.ceil(_BAND_ROWS / step)  # a band is a whole number of steps: the stride stays aligned
    bands = [source.read(top, 0, min(rows, height - top), width)[::step, ::step] for top in range(0, height, rows)]
    return np.concatenate(bands, axis=0)


def _otsu(values: np.ndarray, bins: int = 256) -> float | None:
    """Otsu's threshold: the bin edge that maximises the between-class variance of the histogram (as
    scikit-image's ``threshold_otsu``); None for a constant image."""
    low, high = float(values.min()), float(values.max())
    if values.size == 0 or low == high:
        return None
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = np.cumsum(counts[::-1])[::-1]
    mean_low = np.cumsum(counts * centres) / np.maximum(weight_low, 1)
    mean_high = (np.cumsum((counts * centres)[::-1]) / np.maximum(weight_high[::-1], 1))[::-1]
    between = weight_low[:-1] * weight_high[1:] * (mean_low[:-1] - mean_high[1:]) ** 2
    return float(centres[int(np.argmax(between))])


def _widened(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` grown by ``margin`` pixels (a square neighbourhood), by shifted ORs."""
    grown = mask.copy()
    for _ in range(margin):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown


def _rgb_foreground(picture: np.ndarray) -> np.ndarray | None:
    brightest = picture.max(axis=2)
    saturation = np.where(brightest > 0, (brightest - picture.min(axis=2)) / np.maximum(brightest, 1e-6), 0.0)
    threshold = _otsu(saturation)
    if threshold is None:  # one saturation throughout: all glass (a blank slide), or no glass at all
        empty = float(saturation.max()) <= MIN_SATURATION and float(brightest.mean()) >= GLASS_BRIGHTNESS
        return np.zeros(saturation.shape, bool) if empty else None
    tissue = saturation > max(threshold, MIN_SATURATION)
    glass = ~tissue
    if not glass.any() or float(brightest[glass].mean()) < GLASS_BRIGHTNESS:
        return None
    return tissue


def _grey_foreground(picture: np.ndarray) -> np.ndarray | None:
    threshold = _otsu(picture)
    if threshold is None:
        return None
    bright = picture > threshold
    border = np.concatenate([bright[0], bright[-1], bright[:, 0], bright[:, -1]])
    share = float(border.mean())
    if share >= BORDER_SHARE:
        return ~bright
    if share <= 1 - BORDER_SHARE:
        return bright
    return None
