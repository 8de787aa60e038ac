"""Global and local grey-level thresholds (Otsu, multi-Otsu, adaptive), as region maps.

Each method takes (H, W) or (H, W, C) float in [0, 1] and returns (H, W) int32 bin indices ordered by
brightness: 0 is the darkest bin. Colour images are thresholded on their luminance (ITU-R BT.709
weights), because a threshold is defined on one scalar per pixel. The bins are not connected
components: a bin index means the same thing (darker or brighter) on every image, which is what lets a
labeler learn "bin 1 is nucleus" on training images.
"""

from __future__ import annotations

import numpy as np

from pixelwise.classical._common import check_image, luminance, positive_int
from pixelwise.errors import PixelwiseError


def otsu(image: np.ndarray, *, bins: int = 256) -> np.ndarray:
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
    bins = positive_int(bins, name="bins", method="otsu", minimum=2)
    return (grey > threshold_otsu(grey, nbins=bins)).astype(np.int32)


def multi_otsu(image: np.ndarray, *, classes: int = 3, bins: int = 256) -> np.ndarray:
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
    classes = positive_int(classes, name="classes", method="multi_otsu", minimum=2)
    bins = positive_int(bins, name="bins", method="multi_otsu", minimum=2)
    levels, ranks = np.unique(grey, return_inverse=True)
    if len(levels) <= classes:
        return ranks.reshape(grey.shape).astype(np.int32)
    try:
        thresholds = threshold_multiotsu(grey, classes=classes, nbins=bins)
    except ValueError:
        # more distinct levels than classes, but fewer distinct histogram bins: the fix is more bins
        raise PixelwiseError(
            f"multi_otsu: with {bins} histogram bins the image has fewer than {classes} distinct levels; "
            "raise bins or lower classes"
        ) from None
    # np.digitize with right=False puts a pixel equal to a threshold above it; skimage's own
    # examples do the same, so the bins agree with threshold_multiotsu's documentation
    return np.digitize(grey, thresholds).astype(np.int32)


LOCAL_METHODS = ("gaussian", "mean", "median")


def local_threshold(
    image: np.ndarray, *, block_size: int = 35, method: str = "gaussian", offset: float = 0.0
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
    block_size = positive_int(block_size, name="block_size", method="local_threshold", minimum=3)
    if block_size % 2 == 0:
        raise PixelwiseError(f"local_threshold: block_size must be odd, got {block_size}; use {block_size + 1}")
    if method not in LOCAL_METHODS:
        raise PixelwiseError(f"local_threshold: method must be one of {', '.join(LOCAL_METHODS)}, got {method!r}")
    if isinstance(offset, bool) or not isinstance(offset, (int, float)):
        raise PixelwiseError(f"local_threshold: offset must be a number, got {offset!r}")
    threshold = threshold_local(grey, block_size=block_size, method=method, offset=float(offset), mode="reflect")
    return (grey > threshold).astype(np.int32)


__all__ = ["local_threshold", "multi_otsu", "otsu"]
