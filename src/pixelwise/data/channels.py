"""The channel rule: which images a model or a dataset of C channels takes, and the one conversion between
grey and RGB, used by the data folders, the classical methods and the predictor alike, so that a colour image
becomes the same grey everywhere.

An image of the expected number of channels is taken as it is. Grey and RGB convert into each other (grey
repeated, RGB to its luminance): a photo given to a model of grey microscopy, or the reverse, still means
what it shows. Every other pair is refused: the bands of a multispectral image have a meaning and an order
(``data.bands``), and a 4-band image given to a model of 6 bands, or a grey one repeated into 6, would be
predicted on bands that are not the ones it learned.
"""

from __future__ import annotations

import numpy as np

from pixelwise.errors import InputError

# Rec. 709 luma, the weights of skimage.color.rgb2gray: how an RGB image becomes one grey channel
LUMINANCE = (0.2125, 0.7154, 0.0721)


def convertible(have: int, want: int) -> bool:
    """Whether an image of ``have`` channels is taken where ``want`` are expected (see the module).

    >>> convertible(3, 1), convertible(1, 3), convertible(6, 6), convertible(4, 6), convertible(1, 6)
    (True, True, True, False, False)
    """
    return have == want or {have, want} == {1, 3}


def check_channels(have: int, want: int, name: str, *, expected: str = "the model was trained on") -> None:
    """An InputError naming ``name`` when ``have`` channels cannot stand for ``want`` (``convertible``)."""
    if not convertible(have, want):
        raise channel_mismatch(have, want, name, expected=expected)


def channel_mismatch(have: int, want: int, name: str, *, expected: str = "the model was trained on") -> InputError:
    """The one line for an image of ``have`` channels where ``want`` are expected."""
    from pixelwise.data.bands import BandMismatch

    return BandMismatch(
        f"{name}: an image of {_bands(have)}, but {expected} {_bands(want)}; give images of the same bands "
        "(--bands picks and orders a file's bands)"
    )


def conform_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) float -> (H, W, ``channels``): as is when C already fits, grey repeated, RGB to its luminance.

    The luminance is ``image @ LUMINANCE`` in the image's own float type, bit for bit what
    ``skimage.color.rgb2gray`` computes. Any other pair of channel counts is a ValueError: callers that
    take images from users check the count first (``check_channels``) and say what to do.

    >>> conform_channels(np.ones((1, 2, 3), np.float32), 1).round(4).tolist()
    [[[1.0], [1.0]]]
    >>> conform_channels(np.zeros((2, 2, 1), np.float32), 3).shape
    (2, 2, 3)
    """
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, channels, axis=2)
    if have == 3 and channels == 1:
        return (image @ np.asarray(LUMINANCE, dtype=image.dtype))[:, :, None]
    raise ValueError(f"cannot convert an image with {have} channels to {channels}: only grey to RGB, RGB to grey")


def _bands(count: int) -> str:
    return {1: "1 band (grey)", 3: "3 bands (RGB)"}.get(count, f"{count} bands")
