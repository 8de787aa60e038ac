"""The image kernels under the classical methods: OpenCV where it computes the same result, else SciPy/scikit-image.

OpenCV (``pip install 'pixelwise[opencv]'``) is optional. Every function here gives the same result with it
and without it, bit for bit (the tests run both paths on the same images); OpenCV only makes it faster. Where
OpenCV's algorithm differs from the one a method is defined by, that step stays on SciPy / scikit-image:

- ``cv2.watershed`` floods by the colour difference between neighbouring pixels of an 8-bit image, not a given
  surface, so ``watershed`` is scikit-image's;
- ``cv2.Canny`` does not interpolate the gradient direction in its non-maximum suppression and works on
  8-bit images, so ``canny_regions`` keeps scikit-image's Canny (its closing, hole filling and labelling
  are here);
- ``cv2.adaptiveThreshold`` blurs an 8-bit image with a shorter kernel of another width and rounds the mean
  to whole grey levels; ``above_local_mean`` filters the image with SciPy's Gaussian kernel instead.

**8-bit data.** The methods take float images in [0, 1]; an image counts as 8-bit data when every value is
exactly ``float32(k) / 255`` for an integer k, which is what ``pixelwise.read_image`` gives for an 8-bit file
(``as_levels``). Histograms and medians of such an image are computed on its 256 levels, in OpenCV.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import numpy as np

# float32(k) / 255 for k = 0..255: the value read_image gives to the 8-bit level k
LEVELS = np.arange(256, dtype=np.float32) / np.float32(255)
# above_local_mean: OpenCV's float32 Gaussian of values in [0, 1] differs from SciPy's (double sums, float32
# between the two passes) by at most 2 passes x 47 taps x 2^-24 (the bound of any order of float32 summation)
# of the mean itself, plus the weights' and SciPy's own float32 rounding: 8e-6 of the mean bounds it all
_NEAR_TIE = 8e-6
# up to this many pixels near their threshold, each one's window is summed as SciPy sums it; beyond, the
# windows of one value (flat backgrounds) are found first, and past a share of the image SciPy filters it all
_FEW_NEAR_TIES = 2048
_MOST_NEAR_TIES = 0.02


@cache
def _import_opencv() -> Any | None:
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


def opencv() -> Any | None:
    """The ``cv2`` module, or None when OpenCV is not installed (every kernel then runs on SciPy / scikit-image)."""
    return _import_opencv()


def as_levels(grey: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 in [0, 1] -> its 8-bit levels (H, W) uint8 when it is 8-bit data, else None.

    8-bit data: every value is exactly ``LEVELS[k]`` (``float32(k) / 255``, what ``read_image`` makes of an
    8-bit file). Without OpenCV there is no 8-bit path, so this is None too.
    """
    cv2 = opencv()
    if cv2 is None or grey.dtype != np.float32 or grey.ndim != 2:
        return None
    grey = np.ascontiguousarray(grey)
    sample = grey.ravel()[:: max(1, grey.size // 1024)]  # most float images fail on their first thousand pixels
    if not np.array_equal(LEVELS[np.clip(np.rint(sample * 255), 0, 255).astype(np.intp)], sample):
        return None
    levels = cv2.convertScaleAbs(grey, alpha=255.0)  # round(|255 x|), saturated to 0..255
    if cv2.norm(cv2.LUT(levels, LEVELS), grey, cv2.NORM_INF) != 0:
        return None
    return levels


def level_counts(levels: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (256,) int64: how many pixels hold each level."""
    cv2 = opencv()
    if cv2 is None or levels.size >= 2**24:  # calcHist counts in float32: exact below 2^24
        return np.bincount(levels.ravel(), minlength=256)
    counts = cv2.calcHist([levels], [0], None, [256], [0, 256])
    return counts.ravel().astype(np.int64)


def map_levels(levels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(H, W) uint8 levels -> (H, W) int32 ``table[levels]`` for a table of 256 integers."""
    cv2 = opencv()
    if cv2 is None or table.min() < 0 or table.max() > 255:
        return table.astype(np.int32)[levels]
    steps = np.diff(table)
    if table[0] == 0 and steps.min() >= 0 and steps.sum() <= 1:  # 0, then 1 above some level: a threshold
        above = int(np.argmax(table)) - 1 if table[-1] else 255
        return cv2.threshold(levels, above, 1, cv2.THRESH_BINARY)[1].astype(np.int32)
    return cv2.LUT(levels, table.astype(np.uint8)).astype(np.int32)


def connected_components(mask: np.ndarray, *, connectivity: int = 4) -> tuple[np.ndarray, int]:
    """(H, W) bool -> ((H, W) int32 labels 1..n in raster order of each component's first pixel, 0 outside; n).

    ``connectivity`` 4 (edges) or 8 (edges and corners). The numbering is ``scipy.ndimage.label``'s: OpenCV's
    SAUF algorithm (Wu et al. 2005) numbers in that order, its block-based default does not.

    >>> labels, count = connected_components(np.array([[1, 0, 1], [0, 1, 1]], bool))
    >>> labels.tolist(), count
    ([[1, 0, 2], [0, 2, 2]], 2)
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    cv2 = opencv()
    if cv2 is None or mask.size >= 2**31:
        from scipy import ndimage

        structure = None if connectivity == 4 else np.ones((3, 3), bool)
        labels, count = ndimage.label(mask, structure=structure)
        return labels.astype(np.int32, copy=False), int(count)
    count, labels = cv2.connectedComponentsWithAlgorithm(
        np.ascontiguousarray(mask, dtype=np.uint8), connectivity, cv2.CV_32S, cv2.CCL_WU
    )
    return labels, int(count) - 1


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) float64 Euclidean distance of every True pixel to the nearest False one (0 on False).

    ``scipy.ndimage.distance_transform_edt``'s values bit for bit. OpenCV's exact transform (Felzenszwalb &
    Huttenlocher) gives float32 distances within a rounding step of the true sqrt(n), n the squared distance
    in pixels (an integer); rounding its square recovers n below 2,000 pixels of distance, and sqrt(n) in
    double is SciPy's value. Farther distances, and a mask without a False pixel, go to SciPy.

    >>> distance_transform(np.array([[0, 1, 1, 1]], bool)).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    """
    cv2 = opencv()
    if cv2 is not None and not mask.all():
        mask8 = np.ascontiguousarray(mask, dtype=np.uint8)
        found = cv2.distanceTransform(mask8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
        if float(found.max()) < 2000:
            return np.sqrt(np.rint(np.square(found, out=found), out=found), out=found)
    from scipy import ndimage

    return np.asarray(ndimage.distance_transform_edt(mask), dtype=np.float64)


def watershed(
    surface: np.ndarray, markers: np.ndarray, *, mask: np.ndarray | None = None, compactness: float = 0.0
) -> np.ndarray:
    """(H, W) float surface, (H, W) int markers (0: unlabelled) -> (H, W) int32 labels flooded from the markers.

    scikit-image's watershed (4-connected, ties first come first served); OpenCV's floods another quantity
    (see the module's docstring). ``mask``: pixels left 0; ``compactness`` > 0: compact watershed.
    """
    from skimage.segmentation import watershed as skimage_watershed

    return skimage_watershed(surface, markers, mask=mask, compactness=compactness).astype(np.int32, copy=False)


def minimum_filter(surface: np.ndarray, size: int) -> np.ndarray:
    """(H, W) -> (H, W): the smallest value in the ``size`` x ``size`` square around each pixel (inside the image)."""
    return _rank_filter(surface, size, largest=False)


def maximum_filter(surface: np.ndarray, size: int) -> np.ndarray:
    """(H, W) -> (H, W): the largest value in the ``size`` x ``size`` square around each pixel (inside the image)."""
    return _rank_filter(surface, size, largest=True)


def _rank_filter(surface: np.ndarray, size: int, *, largest: bool) -> np.ndarray:
    cv2 = opencv()
    if cv2 is None or surface.dtype not in (np.uint8, np.float32, np.float64):
        from scipy import ndimage

        # "nearest" repeats the edge, which adds no value the square inside the image does not hold
        function = ndimage.maximum_filter if largest else ndimage.minimum_filter
        return np.asarray(function(surface, size=size, mode="nearest"))
    # OpenCV's default border takes no part in a min or max; a full rectangle runs as two 1-D passes
    square = np.ones((size, size), np.uint8)
    source = np.ascontiguousarray(surface)
    return cv2.dilate(source, square) if largest else cv2.erode(source, square)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) bool: the mask with every hole filled (False areas that no 4-connected path of False
    pixels joins to the image's border), as ``scipy.ndimage.binary_fill_holes``."""
    cv2 = opencv()
    if cv2 is None:
        from scipy import ndimage

        return np.asarray(ndimage.binary_fill_holes(mask))
    # a one-pixel frame of background joins every border pixel; flood it from a corner, 4-connected
    framed = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.uint8)
    framed[1:-1, 1:-1] = mask
    cv2.floodFill(framed, None, (0, 0), 2, flags=4)
    return framed[1:-1, 1:-1] != 2


def closing(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """(H, W) bool closed (dilation, then erosion) by a symmetric ``footprint`` such as ``skimage.morphology.disk``.

    As ``skimage.morphology.closing``: its mirrored border adds nothing a footprint that narrows away from its
    centre (a disk) does not already see inside the image, and OpenCV's default border adds nothing at all.
    """
    cv2 = opencv()
    if cv2 is None:
        from skimage.morphology import closing as skimage_closing

        return np.asarray(skimage_closing(mask, footprint)).astype(bool)
    closed = cv2.morphologyEx(np.ascontiguousarray(mask, dtype=np.uint8), cv2.MORPH_CLOSE, footprint.astype(np.uint8))
    return closed.astype(bool)


def gaussian_kernel(sigma: float, *, truncate: float = 4.0) -> np.ndarray:
    """The 1-D Gaussian weights SciPy's ``gaussian_filter`` uses: radius ``int(truncate * sigma + 0.5)``, sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * x**2)
    return weights / weights.sum()


def above_local_mean(grey: np.ndarray, *, block_size: int, offset: float) -> np.ndarray:
    """(H, W) float32 -> (H, W) bool: ``grey > threshold_local(grey, block_size, "gaussian", offset, mode="reflect")``.

    The threshold is the Gaussian-weighted local mean (sigma = (block_size - 1) / 6, SciPy's kernel, mirrored
    border) minus ``offset``. SciPy filters in double with a float32 image between its two passes; OpenCV
    filters in float32, within ``_NEAR_TIE`` of the mean from SciPy's (4e-7 seen on photos). The pixels that
    close to their threshold (0.06 % of a photo's) are decided by SciPy's own arithmetic on their windows
    (``_scipy_gaussian_at``), so the result is SciPy's bit for bit. In a window of one value SciPy's mean is
    exactly that value (its double sums round back to it), which settles flat backgrounds without arithmetic.
    """
    cv2 = opencv()
    if cv2 is None:
        return grey > _scipy_threshold(grey, block_size, offset)
    weights = gaussian_kernel((block_size - 1) / 6.0)
    source = np.ascontiguousarray(grey)
    threshold_offset = np.float32(offset)
    kernel = weights.astype(np.float32)
    mean = cv2.sepFilter2D(source, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    threshold = mean - threshold_offset
    above = grey > threshold
    # the mean's error (below _NEAR_TIE of the mean, at most 1) and a few float32 steps of the offset's rounding
    slack = 4e-7 * max(1.0, abs(float(offset)))
    rows, columns = np.nonzero(cv2.absdiff(source, threshold) <= _NEAR_TIE + slack)
    if rows.size:
        distance = np.abs(grey[rows, columns] - threshold[rows, columns])
        near = distance <= _NEAR_TIE * np.abs(mean[rows, columns]) + slack
        rows, columns = rows[near], columns[near]
    if rows.size > _FEW_NEAR_TIES:  # flat backgrounds: their windows hold one value, their mean is exact
        window = weights.size
        flat = (minimum_filter(source, window) == maximum_filter(source, window))[rows, columns]
        above[rows[flat], columns[flat]] = grey[rows[flat], columns[flat]] > grey[rows[flat], columns[flat]] - (
            threshold_offset
        )
        rows, columns = rows[~flat], columns[~flat]
        if rows.size > _MOST_NEAR_TIES * grey.size:  # e.g. a smooth ramp: SciPy on the whole image costs less
            return grey > _scipy_threshold(grey, block_size, offset)
    for start in range(0, rows.size, 1024):  # 1,024 windows of 47² doubles: 18 MB at a time
        chosen = slice(start, start + 1024)
        means = _scipy_gaussian_at(source, weights, rows[chosen], columns[chosen])
        above[rows[chosen], columns[chosen]] = grey[rows[chosen], columns[chosen]] > means - threshold_offset
    return above


def _scipy_gaussian_at(grey: np.ndarray, weights: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """SciPy's ``gaussian_filter(grey, output=float32, mode="reflect")`` at the pixels (rows, columns), bit for bit.

    SciPy correlates each line on its own, along axis 0, then axis 1, in double, writing float32 in between; a
    symmetric kernel's sum starts at the centre tap and adds the pairs of equal weights from the outermost in.
    The same operations in the same order on each pixel's window give the same float32 (the tests compare).
    """
    radius = weights.size // 2
    offsets = np.arange(-radius, radius + 1)
    # (tap row, tap column, pixel): every step below is then one vector operation over the pixels
    window_rows = _reflect(offsets[:, None] + rows[None, :], grey.shape[0])
    window_columns = _reflect(offsets[:, None] + columns[None, :], grey.shape[1])
    windows = grey[window_rows[:, None, :], window_columns[None, :, :]].astype(np.float64)
    sums = windows[radius] * weights[radius]
    for tap in range(radius):
        sums += (windows[tap] + windows[2 * radius - tap]) * weights[tap]
    between = sums.astype(np.float32).astype(np.float64)
    total = between[radius] * weights[radius]
    for tap in range(radius):
        total += (between[tap] + between[2 * radius - tap]) * weights[tap]
    return total.astype(np.float32)


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Indices mirrored into 0..size-1 as SciPy's "reflect" extends a line (d c b a | a b c d | d c b a ...)."""
    index = np.mod(index, 2 * size)
    return np.where(index < size, index, 2 * size - 1 - index)


def _scipy_threshold(grey: np.ndarray, block_size: int, offset: float) -> np.ndarray:
    from skimage.filters import threshold_local

    return np.asarray(threshold_local(grey, block_size=block_size, method="gaussian", offset=offset, mode="reflect"))


def median_levels(levels: np.ndarray, block_size: int) -> np.ndarray:
    """(H, W) uint8 -> (H, W) uint8: the median of the ``block_size`` square around each pixel, mirrored border.

    As ``scipy.ndimage.median_filter(mode="reflect")`` on the levels (an odd count of values has one median).
    OpenCV's median filter repeats the edge, so the image is mirrored first and the frame cut off after.
    """
    cv2 = opencv()
    radius = block_size // 2
    if cv2 is None or min(levels.shape) <= radius:
        from scipy import ndimage

        return np.asarray(ndimage.median_filter(levels, size=block_size, mode="reflect"))
    framed = cv2.copyMakeBorder(levels, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    return cv2.medianBlur(framed, block_size)[radius:-radius, radius:-radius]
