"""Grey <-> RGB: one conversion, identical to scikit-image's luminance, for every caller."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray

from pixelwise.classical._common import luminance
from pixelwise.data.channels import LUMINANCE, conform_channels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rgb_to_grey_is_rgb2gray_bit_for_bit(dtype: type) -> None:
    rgb = np.random.default_rng(0).random((17, 23, 3)).astype(dtype)
    grey = conform_channels(rgb, 1)
    assert grey.shape == (17, 23, 1) and grey.dtype == dtype
    np.testing.assert_array_equal(grey[:, :, 0], rgb2gray(rgb))
    np.testing.assert_allclose(grey[0, 0, 0], sum(w * c for w, c in zip(LUMINANCE, rgb[0, 0], strict=True)), 1e-6)
    # the classical methods' grey is the same one
    np.testing.assert_array_equal(luminance(rgb), grey[:, :, 0])


def test_grey_is_repeated_and_matching_images_are_returned_as_they_are() -> None:
    grey = np.random.default_rng(1).random((5, 6, 1), dtype=np.float32)
    rgb = conform_channels(grey, 3)
    assert rgb.shape == (5, 6, 3) and all(np.array_equal(rgb[:, :, c], grey[:, :, 0]) for c in range(3))
    assert conform_channels(grey, 1) is grey and conform_channels(rgb, 3) is rgb


def test_other_channel_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot convert an image with 4 channels to 3"):
        conform_channels(np.zeros((2, 2, 4), np.float32), 3)
    with pytest.raises(ValueError, match="cannot convert an image with 3 channels to 2"):
        conform_channels(np.zeros((2, 2, 3), np.float32), 2)
