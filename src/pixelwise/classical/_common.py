"""What every classical method does first: check the image, and reduce colour to luminance where needed.

The methods' options are checked by ``pixelwise.settings.checked_options`` from their annotations."""

from __future__ import annotations

import numpy as np

from pixelwise.data.channels import conform_channels
from pixelwise.errors import InputError, PixelwiseError


def check_image(image: np.ndarray, *, method: str) -> np.ndarray:
    """The image as (H, W, C) float32 in [0, 1], or a PixelwiseError that says what is wrong.

    image: (H, W) or (H, W, C) with C = 1 or 3, floating point in [0, 1] (what ``read_image`` returns).
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim == 3 and array.shape[2] not in (1, 3):
        # a file of other bands (multispectral, two stains) fails alone, named by the job: an input error
        raise InputError(
            f"{method}: an image of {array.shape[2]} channels; the classical methods take grey or RGB images (C = 1 or 3): "
            "save one band or three"
        )
    if array.ndim != 3:
        raise PixelwiseError(
            f"{method}: expected an image of shape (H, W) or (H, W, C) with C = 1 or 3, got {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise PixelwiseError(f"{method}: the image is empty ({array.shape}); give an image with pixels")
    if not np.issubdtype(array.dtype, np.floating):
        raise PixelwiseError(
            f"{method}: expected a float image in [0, 1], got {array.dtype}; "
            "read files with pixelwise.read_image, or divide 8-bit images by 255"
        )
    # min and max are NaN when a value is, and infinite when one is: no separate pass for finiteness
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise PixelwiseError(f"{method}: the image holds NaN or infinite values; replace them first")
    # a little slack: resampling and colour conversions overshoot [0, 1] by rounding errors
    if low < -1e-4 or high > 1 + 1e-4:
        raise PixelwiseError(
            f"{method}: image values span [{low:.4g}, {high:.4g}], expected [0, 1]; "
            "read files with pixelwise.read_image, or rescale"
        )
    if low < 0 or high > 1:
        array = np.clip(array, 0.0, 1.0)
    # the caller's array itself when it is float32 already: no method writes into its input
    return array.astype(np.float32, copy=False)


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 -> (H, W) float32: grey as is, RGB by the ITU-R BT.709 weights (``rgb2gray``).

    >>> luminance(np.ones((1, 2, 3), np.float32)).round(4).tolist()
    [[1.0, 1.0]]
    """
    return conform_channels(image, 1)[:, :, 0]


def local_extrema(surface: np.ndarray, spacing: int, *, maxima: bool = True, minima: bool = True) -> np.ndarray:
    """(H, W) float -> (H, W) bool: pixels that are the largest (smallest) within ``spacing`` pixels.

    The window is the (2 * spacing + 1)² square, cut at the image's border; a plateau of equal values is
    marked whole. Max/min filters are separable (``kernels.maximum_filter``), so this costs a few
    milliseconds on 512×512 (scikit-image's ``peak_local_max`` took 0.7 s on a photo with saturated
    plateaus, comparing every plateau pixel).

    >>> local_extrema(np.array([[0.0, 1.0, 0.0, 0.0, 2.0]]), 1, minima=False).astype(int).tolist()
    [[0, 1, 0, 0, 1]]
    """
    from pixelwise.classical.kernels import maximum_filter, minimum_filter

    window = 2 * spacing + 1
    found = np.zeros(surface.shape, bool)
    if maxima:
        found |= surface == maximum_filter(surface, window)
    if minima:
        found |= surface == minimum_filter(surface, window)
    return found
