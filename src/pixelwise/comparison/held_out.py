"""The held-out images a comparison scores (its test split), read once when they fit in memory: every method
and noise level reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    from pixelwise.data.folder import SegmentationFolder


@dataclass
class HeldOutImages:
    """The first ``limit`` samples of the test split (``folder``), cached by ``cache_if_small``."""

    folder: SegmentationFolder
    limit: int
    cached: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return self.limit

    def __getitem__(self, index: int) -> Any:
        return self.cached[index] if self.cached else self.folder[index]

    def cache_if_small(self, budget_bytes: int = 512 * 2**20) -> None:
        first = self.folder[0]
        per_sample = first.image.nbytes + truth_of(first).nbytes
        if per_sample * self.limit <= budget_bytes:
            self.cached = [self.folder[index] for index in range(self.limit)]


def truth_of(sample: Any) -> np.ndarray:
    """A test sample's mask; a test image without one is an error (there would be nothing to score)."""
    if sample.mask is None:
        raise PixelwiseError(f"{sample.image_path}: test image without a mask; compare needs the test masks")
    return np.asarray(sample.mask)
