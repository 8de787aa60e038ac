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

from typing import Annotated

import numpy as np

from pixelwise.classical._common import check_image, luminance
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
    counts, centres, pixel_bins = _histogram(grey, bins)
    if np.count_nonzero(counts) < 2:
        return np.zeros(grey.shape, np.int32)
    last_dark_bin = np.searchsorted(centres, threshold_otsu(hist=(counts, centres)))
    return (pixel_bins > last_dark_bin).astype(np.int32)


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
    counts, centres, pixel_bins = _histogram(grey, bins)
    if np.count_nonzero(counts) <= classes:
        # only then can there be as few distinct levels as classes (sorting every pixel costs ~20 ms)
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
    return np.searchsorted(last_bins, pixel_bins, side="left").astype(np.int32)


def _histogram(grey: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram of ``grey`` over [min, max]: (counts, bin centres, (H, W) bin index of every pixel).

    The counts are made from the pixels' bin indices, so a pixel and the bin it is counted in never
    disagree (``np.histogram`` and ``np.searchsorted`` on its edges cost 5–10 times more on 512×512).
    """
    low, high = float(grey.min()), float(grey.max())
    scale = bins / (high - low) if high > low else 0.0  # a constant image: everything in bin 0
    pixel_bins = np.minimum(((grey - low) * scale).astype(np.intp), bins - 1)
    counts = np.bincount(pixel_bins.ravel(), minlength=bins)
    width = (high - low) / bins if high > low else 1.0
    return counts, low + (np.arange(bins) + 0.5) * width, pixel_bins


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
    threshold = threshold_local(grey, block_size=block_size, method=method, offset=offset, mode="reflect")
    return (grey > threshold).astype(np.int32)


__all__ = ["local_threshold", "multi_otsu", "otsu"]
