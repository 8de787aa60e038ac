"""Grey <-> RGB: the one conversion between channel counts, used by the data folders, the classical methods
and the predictor alike, so that a colour image becomes the same grey everywhere."""

from __future__ import annotations

import numpy as np

# Rec. 709 luma, the weights of skimage.color.rgb2gray: how an RGB image becomes one grey channel
LUMINANCE = (0.2125, 0.7154, 0.0721)


def conform_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) float -> (H, W, ``channels``): as is when C already fits, grey repeated, RGB to its luminance.

    The luminance is ``image @ LUMINANCE`` in the image's own float type, bit for bit what
    ``skimage.color.rgb2gray`` computes. Any other pair of channel counts is a ValueError: callers that
    take images from users check the count first and say what to do.

    >>> conform_channels(np.ones((1, 2, 3), np.float32), 1).round(4).tolist()
    [[[1.0], [1.0]]]
    >>> conform_channels(np.zeros((2, 2, 1), np.float32), 3).shape
    (2, 2, 3)
    """
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1:
        return np.repeat(image, channels, axis=2)
    if have == 3 and channels == 1:
        return (image @ np.asarray(LUMINANCE, dtype=image.dtype))[:, :, None]
    raise ValueError(f"cannot convert an image with {have} channels to {channels}: only grey to any, RGB to grey")
