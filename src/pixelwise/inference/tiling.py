"""Tiling maths for sliding-window inference: where tiles start and how they are weighted.

Pure functions on integers and numpy arrays (no torch), after the sliding-window scheme of nnU-Net:
evenly spaced tiles whose last one ends exactly at the border, blended with a Gaussian importance map
so that each pixel's prediction leans on the tile where it sits nearest the centre.
"""

from __future__ import annotations

import math

import numpy as np


def tile_starts(length: int, tile: int, overlap: float = 0.5) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length`` with at least ``overlap`` overlap.

    ``n = ceil((length - tile) / (tile * (1 - overlap))) + 1`` tiles, spaced evenly from 0 to
    ``length - tile``, so the last tile ends exactly at the border. A ``length`` no longer than ``tile``
    gives the single start 0 (the caller shrinks or pads the tile to fit).

    >>> tile_starts(512, 256, 0.5)
    [0, 128, 256]
    >>> tile_starts(500, 256, 0.5)
    [0, 122, 244]
    >>> tile_starts(100, 256)
    [0]
    """
    if tile < 1:
        raise ValueError(f"tile must be at least 1, got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if length <= tile:
        return [0]
    step = tile * (1.0 - overlap)
    # a ratio that is an integer up to rounding (512 / 128.0000001) must not add a tile
    count = math.ceil((length - tile) / step - 1e-9) + 1
    span = length - tile
    return [round(index * span / (count - 1)) for index in range(count)]


def tile_grid(height: int, width: int, tile: int, overlap: float = 0.5) -> list[tuple[int, int]]:
    """(top, left) of every tile over a ``height`` × ``width`` image, row by row.

    >>> tile_grid(300, 200, 200, 0.5)
    [(0, 0), (100, 0)]
    """
    return [(top, left) for top in tile_starts(height, tile, overlap) for left in tile_starts(width, tile, overlap)]


def gaussian_importance_map(height: int, width: int, *, sigma_scale: float = 1 / 8) -> np.ndarray:
    """(height, width) float32 Gaussian centred on the tile, ``sigma = size * sigma_scale`` per axis, max 1.

    Entries that underflow to zero are raised to the smallest positive entry, because a pixel whose
    weights are all zero would divide zero by zero when the blended logits are normalised.

    >>> weights = gaussian_importance_map(8, 8)
    >>> float(weights.max()), weights.shape, weights.dtype.name
    (1.0, (8, 8), 'float32')
    """
    if height < 1 or width < 1:
        raise ValueError(f"tile size must be positive, got {height}×{width}")
    if sigma_scale <= 0:
        raise ValueError(f"sigma_scale must be positive, got {sigma_scale}")

    def axis(size: int) -> np.ndarray:
        # pixel centres relative to the tile centre; an even size puts the peak between two pixels
        offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
        return np.exp(-0.5 * (offsets / (size * sigma_scale)) ** 2)

    weights = np.outer(axis(height), axis(width))
    weights /= weights.max()
    weights = weights.astype(np.float32)
    positive = weights[weights > 0]
    weights[weights == 0] = positive.min()
    return weights
