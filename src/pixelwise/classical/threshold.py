"""Global and local grey-level thresholds (Otsu, multi-Otsu, adaptive), as region maps.

Each method takes (H, W) or (H, W, C) float in [0, 1] and returns (H, W) int32 bin indices ordered by
brightness: 0 is the darkest bin. Colour images are thresholded on their luminance (ITU-R BT.709
weights), because a threshold is defined on one scalar per pixel. The bins are not connected
components: a bin index means the same thing (darker or brighter) on every image, which is what lets a
labeler learn "bin 1 is nucleus" on training images.

Otsu's thresholds are searched over a histogram, and here every pixel goes to the side of its histogram
bin: the partition the search optimised. scikit-image returns a threshold at the centre of the last dark
bin, and ``image > threshold`` sends the upper half of that bin to the bright side, so on float images
the brightest pixels of the dark class can land in the bright one (one pixel in 40 on three clearly
separated groups of 40, in our tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from pixelwise.classical._common import check_image, luminance
from pixelwise.classical.kernels import LEVELS, above_local_mean, as_levels, map_levels, median_levels
from pixelwise.classical.kernels import level_counts as level_counts_of
from pixelwise.errors import PixelwiseError
from pixelwise.settings import Choices, Range, checked_options

BINS = Range(minimum=2)


@checked_options
def otsu(image: np.ndarray, *, bins: Annotated[int, BINS] = 256) -> np.ndarray:
    """Two bins split at Otsu's threshold (the one maximising the between-class variance).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]
    bins : number of histogram bins the threshold is searched over

    Returns
    -------
    (H, W) int32: 1 where the luminance is above the threshold, else 0. A constant image is all 0.

    Examples
    --------
    >>> otsu(np.array([[0.1, 0.1, 0.8], [0.1, 0.9, 0.8]]))
    array([[0, 0, 1],
           [0, 1, 1]], dtype=int32)
    """
    from skimage.filters import threshold_otsu

    grey = luminance(check_image(image, method="otsu"))
    histogram = _histogram(grey, bins)
    if np.count_nonzero(histogram.counts) < 2:
        return np.zeros(grey.shape, np.int32)
    last_dark_bin = np.searchsorted(histogram.centres, threshold_otsu(hist=(histogram.counts, histogram.centres)))
    return histogram.bin_labels(lambda pixel_bins: pixel_bins > last_dark_bin)


@checked_options
def multi_otsu(
    image: np.ndarray, *, classes: Annotated[int, Range(minimum=2)] = 3, bins: Annotated[int, BINS] = 256
) -> np.ndarray:
    """``classes`` bins split at the multi-level Otsu thresholds (Liao et al. 2001).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]
    classes : number of bins (``classes - 1`` thresholds)
    bins : number of histogram bins the thresholds are searched over

    Returns
    -------
    (H, W) int32 bin indices 0..classes-1, darkest first. An image with no more than ``classes`` distinct
    grey levels puts each level in its own bin (the partition with zero within-class variance).

    Examples
    --------
    >>> multi_otsu(np.array([[0.0, 0.0, 0.5], [0.5, 0.9, 1.0]]), classes=3)
    array([[0, 0, 1],
           [1, 2, 2]], dtype=int32)
    """
    from skimage.filters import threshold_multiotsu

    grey = luminance(check_image(image, method="multi_otsu"))
    histogram = _histogram(grey, bins)
    counts, centres = histogram.counts, histogram.centres
    if np.count_nonzero(counts) <= classes:
        # only then can there be as few distinct levels as classes (sorting every pixel costs ~20 ms)
        if histogram.levels is not None and histogram.level_counts is not None:
            present = histogram.level_counts > 0
            if np.count_nonzero(present) <= classes:
                return map_levels(histogram.levels, np.maximum(np.cumsum(present) - 1, 0))
        else:
            levels, ranks = np.unique(grey, return_inverse=True)
            if len(levels) <= classes:
                return ranks.reshape(grey.shape).astype(np.int32)
    if np.count_nonzero(counts) < classes:
        raise PixelwiseError(
            f"multi_otsu: with {bins} histogram bins the image has fewer than {classes} distinct levels; "
            "raise bins or lower classes"
        )
    last_bins = np.searchsorted(centres, threshold_multiotsu(hist=(counts, centres), classes=classes))
    # bin index = how many classes' last bins lie below the pixel's histogram bin
    return histogram.bin_labels(lambda pixel_bins: np.searchsorted(last_bins, pixel_bins, side="left"))


@dataclass(frozen=True)
class _Histogram:
    """The histogram the thresholds are searched over, and which bin each pixel is in.

    ``counts`` (bins,), ``centres`` (bins,); for 8-bit data (``kernels.as_levels``) ``levels`` (H, W) uint8,
    ``level_counts`` (256,) and ``level_bins`` (256,) (the bin of each level); otherwise ``pixel_bins`` (H, W).
    """

    counts: np.ndarray
    centres: np.ndarray
    pixel_bins: np.ndarray | None = None
    levels: np.ndarray | None = None
    level_counts: np.ndarray | None = None
    level_bins: np.ndarray | None = None

    def bin_labels(self, label_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """(H, W) int32 ``label_of(bin indices)`` of every pixel; on 8-bit data computed once per level."""
        if self.levels is not None and self.level_bins is not None:
            return map_levels(self.levels, np.asarray(label_of(self.level_bins)))
        assert self.pixel_bins is not None
        return np.asarray(label_of(self.pixel_bins)).astype(np.int32)


def _histogram(grey: np.ndarray, bins: int) -> _Histogram:
    """Histogram of ``grey`` over [min, max] in ``bins`` bins, and the bin of every pixel.

    The counts are made from the pixels' bin indices, so a pixel and the bin it is counted in never
    disagree (``np.histogram`` and ``np.searchsorted`` on its edges cost 5–10 times more on 512×512). On
    8-bit data the same arithmetic runs on the 256 levels, each counted once (OpenCV), so the histogram and
    every pixel's bin are the same as the per-pixel computation's, in a fraction of its time.
    """
    levels = as_levels(grey)
    if levels is not None:
        level_counts = level_counts_of(levels)
        present = np.flatnonzero(level_counts)
        low, high = float(LEVELS[present[0]]), float(LEVELS[present[-1]])
        level_bins = _bins_of(LEVELS, low, high, bins)
        counts = np.bincount(level_bins[present], weights=level_counts[present], minlength=bins).astype(np.int64)
        return _Histogram(
            counts, _centres(low, high, bins), levels=levels, level_counts=level_counts, level_bins=level_bins
        )
    low, high = float(grey.min()), float(grey.max())
    pixel_bins = _bins_of(grey, low, high, bins)
    counts = np.bincount(pixel_bins.ravel(), minlength=bins)
    return _Histogram(counts, _centres(low, high, bins), pixel_bins=pixel_bins)


def _bins_of(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """The histogram bin of each float32 value (one expression for pixels and for levels: the same bins)."""
    scale = bins / (high - low) if high > low else 0.0  # a constant image: everything in bin 0
    return np.minimum(((values - low) * scale).astype(np.intp), bins - 1)


def _centres(low: float, high: float, bins: int) -> np.ndarray:
    width = (high - low) / bins if high > low else 1.0
    return low + (np.arange(bins) + 0.5) * width


LOCAL_METHODS = ("gaussian", "mean", "median")


@checked_options
def local_threshold(
    image: np.ndarray,
    *,
    block_size: Annotated[int, Range(minimum=3)] = 35,
    method: Annotated[str, Choices(LOCAL_METHODS)] = "gaussian",
    offset: Annotated[float, Range()] = 0.0,
) -> np.ndarray:
    """Two bins split by a threshold per pixel: its neighbourhood's weighted mean (or median) minus ``offset``.

    Copes with uneven illumination, where one global threshold cannot work.

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]
    block_size : odd side of the neighbourhood, in pixels
    method : ``"gaussian"`` (Gaussian weights, sigma = (block_size - 1) / 6), ``"mean"`` or ``"median"``
    offset : subtracted from the local statistic; negative values keep flat noisy areas in bin 0

    Returns
    -------
    (H, W) int32: 1 where the luminance is above its local threshold, else 0.

    Examples
    --------
    >>> local_threshold(np.array([[0.0, 0.0, 0.0, 1.0, 1.0]] * 3), block_size=3, method="mean")
    array([[0, 0, 0, 1, 0],
           [0, 0, 0, 1, 0],
           [0, 0, 0, 1, 0]], dtype=int32)
    """
    from skimage.filters import threshold_local

    grey = luminance(check_image(image, method="local_threshold"))
    if block_size % 2 == 0:
        raise PixelwiseError(f"local_threshold: block_size must be odd, got {block_size}; use {block_size + 1}")
    if method == "gaussian":
        return above_local_mean(grey, block_size=block_size, offset=float(offset)).astype(np.int32)
    levels = as_levels(grey) if method == "median" else None
    if levels is not None:
        # the median of 8-bit data is one of its levels: OpenCV's histogram median, then the level's value
        threshold = LEVELS[median_levels(levels, block_size)] - np.float32(offset)
    else:
        threshold = threshold_local(grey, block_size=block_size, method=method, offset=offset, mode="reflect")
    return (grey > threshold).astype(np.int32)


__all__ = ["local_threshold", "multi_otsu", "otsu"]
