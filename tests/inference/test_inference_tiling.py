"""Tiling maths: tiles cover the image exactly, the last ends at the border, blending a constant is exact."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.inference.tiling import gaussian_importance_map, tile_grid, tile_starts


@pytest.mark.parametrize("length", [256, 257, 300, 511, 512, 513, 1000, 2048])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
def test_tiles_cover_the_axis_evenly_and_end_at_the_border(length: int, overlap: float) -> None:
    tile = 256
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + tile == length
    assert starts == sorted(set(starts))
    gaps = np.diff(starts)
    # never further apart than the requested step, so the overlap is at least the requested one
    assert (gaps <= tile * (1 - overlap) + 1e-9).all()
    # evenly spaced: rounding moves a start by at most one pixel
    if len(gaps):
        assert gaps.max() - gaps.min() <= 1
    # and no more tiles than needed: one fewer would leave a gap wider than the step
    expected = int(np.ceil((length - tile) / (tile * (1 - overlap)) - 1e-9)) + 1
    assert len(starts) == expected
    covered = np.zeros(length, dtype=int)
    for start in starts:
        covered[start : start + tile] += 1
    assert covered.min() >= 1


def test_exact_starts_on_small_cases() -> None:
    assert tile_starts(512, 256, 0.5) == [0, 128, 256]
    assert tile_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert tile_starts(10, 4, 0.0) == [0, 3, 6]
    assert tile_starts(4, 4, 0.5) == [0]
    # an image shorter than the tile: one tile (the predictor shrinks it to the image)
    assert tile_starts(3, 4, 0.5) == [0]
    assert tile_grid(6, 4, 4, 0.5) == [(0, 0), (2, 0)]


def test_bad_tiling_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(10, 4, 1.0)
    with pytest.raises(ValueError, match="tile"):
        tile_starts(10, 0)


def test_gaussian_map_peaks_at_one_in_the_centre_and_is_positive_everywhere() -> None:
    weights = gaussian_importance_map(7, 9)
    assert weights.dtype == np.float32
    assert weights.shape == (7, 9)
    assert weights[3, 4] == 1.0
    assert weights.max() == 1.0
    assert np.array_equal(weights, weights[::-1, ::-1])  # symmetric
    # sigma = size / 8: the corner of a 7×9 tile sits 3 and 4 pixels out, i.e. 3/(7/8) and 4/(9/8) sigmas
    expected = np.exp(-0.5 * ((3 / (7 / 8)) ** 2 + (4 / (9 / 8)) ** 2))
    assert weights[0, 0] == pytest.approx(expected, rel=1e-5)
    # an extreme sigma underflows to zero: clamped to the smallest positive value, never zero
    sharp = gaussian_importance_map(64, 64, sigma_scale=1 / 200)
    assert sharp.min() > 0
    assert sharp[0, 0] == sharp.min()


def test_blending_a_constant_gives_the_constant_everywhere() -> None:
    height, width, tile = 300, 530, 128
    weights = gaussian_importance_map(tile, tile)
    # float32 throughout, as in the predictor
    total = np.zeros((height, width), dtype=np.float32)
    norm = np.zeros((height, width), dtype=np.float32)
    for top, left in tile_grid(height, width, tile, 0.5):
        total[top : top + tile, left : left + tile] += 2.5 * weights
        norm[top : top + tile, left : left + tile] += weights
    assert norm.min() > 0
    np.testing.assert_allclose(total / norm, 2.5, rtol=1e-6)
