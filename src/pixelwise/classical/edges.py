"""Regions from edges: the watershed of the Sobel gradient, and closed Canny contours filled in.

Both take (H, W) or (H, W, C) float in [0, 1] and return (H, W) int32 region labels.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from pixelwise.classical._common import check_image, local_extrema, luminance
from pixelwise.classical.kernels import closing, connected_components, fill_holes, watershed
from pixelwise.settings import AT_LEAST_ONE, NON_NEGATIVE, checked_options


def sobel_gradient(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float -> (H, W) float32 Sobel magnitude; for colour the largest over the channels.

    Taking the largest keeps an edge between two colours of equal brightness, which luminance would lose.
    """
    from skimage.filters import sobel

    return np.max([sobel(image[:, :, channel]) for channel in range(image.shape[2])], axis=0).astype(np.float32)


@checked_options
def sobel_watershed(
    image: np.ndarray,
    *,
    smoothing: Annotated[float, NON_NEGATIVE] = 2.0,
    marker_spacing: Annotated[int, AT_LEAST_ONE] = 10,
    compactness: Annotated[float, NON_NEGATIVE] = 0.0,
) -> np.ndarray:
    """Watershed of the Sobel gradient, flooded from the bottoms of its basins.

    The image is smoothed (Gaussian, ``smoothing`` pixels) and its Sobel gradient taken. Markers are the
    gradient's local minima: pixels whose gradient is the smallest within ``marker_spacing`` pixels, each
    connected group of them (a flat plateau) one marker. Every area enclosed by edges has such a bottom,
    so small objects get their own marker. The flood then fills the image in order of increasing
    gradient, so region boundaries land on gradient ridges (edges).

    We first took the flattest fifth of the image as markers (gradient below its 20 % quantile), which
    is common and fast; on the nuclei image it put almost every marker in the background, and the oracle
    labelling of its regions reached 81 % pixel accuracy against 96 % with basin minima (h-minima of
    depth 0.01 reached 97 % at twice the run time).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]; colour edges come from every channel
    smoothing : Gaussian sigma before the gradient, in pixels; 0 for none. Noise makes a basin of
        every few pixels without it
    marker_spacing : smallest distance between two markers, in pixels; larger gives fewer regions
    compactness : 0 for the classic watershed; larger values give more regular regions (compact watershed)

    Returns
    -------
    (H, W) int32 region labels 1..n, one per marker.

    Examples
    --------
    >>> image = np.zeros((4, 8)); image[:, 4:] = 1.0
    >>> sobel_watershed(image, smoothing=0, marker_spacing=2)
    array([[1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2]], dtype=int32)
    """
    from scipy import ndimage

    pixels = check_image(image, method="sobel_watershed")
    if smoothing > 0:
        pixels = ndimage.gaussian_filter(pixels, (smoothing, smoothing, 0), mode="reflect")
    gradient = sobel_gradient(pixels)
    markers, _ = connected_components(local_extrema(gradient, marker_spacing, maxima=False))
    return watershed(gradient, markers, compactness=compactness)


@checked_options
def canny_regions(
    image: np.ndarray,
    *,
    sigma: Annotated[float, NON_NEGATIVE] = 2.0,
    low_threshold: Annotated[float | None, NON_NEGATIVE] = None,
    high_threshold: Annotated[float | None, NON_NEGATIVE] = None,
    closing_radius: Annotated[int, NON_NEGATIVE] = 2,
    min_size: Annotated[int, AT_LEAST_ONE] = 20,
) -> np.ndarray:
    """Objects enclosed by Canny edges: edges, closed by a disk, then filled; the rest is region 0.

    The classic "edges, then fill the holes" pipeline: an object whose contour closes (after a
    morphological closing bridges gaps up to about ``2 * closing_radius`` pixels) becomes one region,
    contour included. Contours that stay open, for instance where an object touches the image border,
    enclose nothing, and that object's pixels stay in region 0 (a known weakness of edge-based
    segmentation: one gap loses a whole object).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]; colour images use their luminance
    sigma : width of the Gaussian smoothing inside Canny, in pixels
    low_threshold, high_threshold : hysteresis thresholds on the gradient magnitude
        (None: scikit-image's defaults, 0.1 and 0.2 for images in [0, 1])
    closing_radius : radius of the disk that closes gaps in the edges; 0 for none
    min_size : filled objects smaller than this many pixels go back to region 0

    Returns
    -------
    (H, W) int32: 0 outside every closed contour, 1..n for the enclosed objects.

    Examples
    --------
    >>> image = np.zeros((9, 9)); image[2:7, 2:7] = 1.0
    >>> canny_regions(image, sigma=1.0, closing_radius=0, min_size=1)
    array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=int32)
    """
    from skimage.feature import canny
    from skimage.morphology import disk

    grey = luminance(check_image(image, method="canny_regions"))
    edges = canny(grey, sigma=sigma, low_threshold=low_threshold, high_threshold=high_threshold)
    if closing_radius > 0:
        edges = closing(edges, disk(closing_radius))
    objects, _ = connected_components(fill_holes(edges))
    sizes = np.bincount(objects.ravel())
    keep = sizes >= min_size
    keep[0] = False
    renumber = np.zeros(len(sizes), np.int32)
    renumber[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return renumber[objects]
