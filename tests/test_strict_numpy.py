"""The suite's NEP 50 guard (``strict_numpy.py``) catches what NumPy 2.5 refuses, and only that."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.metrics import BoundaryF1


def test_the_guard_refuses_a_python_int_that_does_not_fit_the_array() -> None:
    mask = np.array([[0, 1], [255, 2]], np.uint8)
    with pytest.raises(OverflowError, match="-1 out of bounds for uint8"):
        np.where(mask != 255, mask, -1)
    with pytest.raises(OverflowError, match="256"):
        np.select([mask > 1], [mask], 256)
    with pytest.raises(OverflowError, match="-1"):
        np.pad(mask, 1, constant_values=-1)


def test_the_guard_lets_fitting_values_and_other_arguments_through() -> None:
    mask = np.array([[0, 1], [255, 2]], np.uint8)
    assert np.where(mask != 255, mask, 0).dtype == np.uint8
    assert np.pad(mask, 300).shape == (602, 602)  # a pad width is not a pixel value
    assert np.where(mask != 255, mask.astype(np.int16), -1).min() == -1
    assert np.clip(np.array([0.5]), 0, 1)[0] == 0.5


def test_boundary_f1_with_ignored_pixels_in_a_uint8_mask() -> None:
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1
    truth[0, :] = 255
    scores = BoundaryF1(2, tolerance=0, ignore_index=255)
    scores.update(truth.copy(), truth)
    assert scores.counts[1, 0] == scores.counts[1, 1] > 0  # every predicted boundary pixel matched
