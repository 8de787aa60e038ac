"""What a request costs before it runs: the tiles the predictor will run over the image, times the TTA passes.

The time of a prediction grows with the number of forward passes, not with the pixels: ``tile=32&overlap=0.75``
on a 1-megapixel image is 15,000 tiles (60,000 passes with TTA), minutes of one inference slot. The cost is
counted from the image's header, before decoding, with the same tiling maths as the predictor
(:func:`pixelwise.inference.tiling.tile_starts`), and a request over the budget is refused before it takes
a slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pixelwise.inference.tiling import tile_starts

# the predictor's test-time augmentation: the image and its three flips (horizontal, vertical, both)
TTA_PASSES = 4


@dataclass(frozen=True)
class Cost:
    """The tiles a prediction runs and the forward passes per tile."""

    windows: int
    passes: int

    @property
    def total(self) -> int:
        return self.windows * self.passes


def request_cost(height: int, width: int, *, tile: int, overlap: float, tta: bool) -> Cost:
    """The cost of predicting a ``height`` × ``width`` image with these tiling options."""
    windows = len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))
    return Cost(windows, TTA_PASSES if tta else 1)


def default_budget(max_pixels: int, *, tile: int, overlap: float, tta: bool) -> int:
    """The cost of the largest image accepted (a square of ``max_pixels``) at the model's own tile size,
    overlap and TTA: every request that leaves these to the model passes (bar a strip thinner than a quarter
    of a tile's step, which costs a tile per step of its length); smaller tiles, more overlap or TTA pass on
    smaller images."""
    side = math.isqrt(max_pixels)
    return request_cost(side, side, tile=tile, overlap=overlap, tta=tta).total
