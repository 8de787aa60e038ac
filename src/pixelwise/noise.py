"""Noise models for robustness sweeps: additive Gaussian noise and salt-and-pepper, seeded and clipped.

Both act on images (H, W) or (H, W, C) in [0, 1] and return float32 in [0, 1]. A ``NoiseLevel`` names one
point of a sweep; ``apply_noise`` draws its noise from a seed derived from (sweep seed, level, image), so every
method of a comparison sees exactly the same noisy images, whatever order they run in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pixelwise.errors import PixelwiseError

NoiseKind = Literal["gaussian", "salt_pepper"]
NOISE_KINDS: tuple[NoiseKind, ...] = ("gaussian", "salt_pepper")
# a stable number per kind for the seed sequence (hashing the name would change between runs)
_KIND_CODES = {"gaussian": 1, "salt_pepper": 2}


@dataclass(frozen=True)
class NoiseLevel:
    """One point of a noise sweep: ``kind`` and ``amount``.

    For ``gaussian`` the amount is sigma as a fraction of the [0, 1] intensity range; for ``salt_pepper`` it is
    the fraction of pixels replaced. Amount 0 is the clean image.

    >>> NoiseLevel("gaussian", 0.1).name
    'gaussian σ=0.1'
    """

    kind: NoiseKind
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise PixelwiseError(f"unknown noise kind {self.kind!r}; choose from {', '.join(NOISE_KINDS)}")
        if not 0.0 <= self.amount <= (1.0 if self.kind == "salt_pepper" else 10.0):
            raise PixelwiseError(
                f"noise amount {self.amount} for {self.kind} is out of range; "
                "give sigma in [0, 10] or a salt-and-pepper fraction in [0, 1]"
            )

    @property
    def name(self) -> str:
        """Short label for tables and legends."""
        if self.amount == 0:
            return "clean"
        symbol = "σ" if self.kind == "gaussian" else "p"
        return f"{self.kind.replace('_', '&')} {symbol}={self.amount:g}"

    @property
    def key(self) -> str:
        """ASCII identifier for JSON keys and file names, e.g. ``gaussian-0.1``."""
        return "clean" if self.amount == 0 else f"{self.kind}-{self.amount:g}"


def gaussian_noise(image: np.ndarray, sigma: float, *, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, sigma²) independently to every pixel and channel, then clip to [0, 1].

    image: (H, W) or (H, W, C) float in [0, 1] -> same shape, float32.

    >>> out = gaussian_noise(np.full((2, 2), 0.5), 0.0, rng=np.random.default_rng(0))
    >>> out.tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    image = np.asarray(image, dtype=np.float32)
    if sigma == 0:
        return image.copy()
    noise = rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(image + noise, 0.0, 1.0)


def salt_and_pepper(image: np.ndarray, amount: float, *, rng: np.random.Generator) -> np.ndarray:
    """Replace exactly ``round(amount * H * W)`` pixels, half by 0 (pepper) and half by 1 (salt).

    A replaced pixel takes the value in all its channels, like a dead or stuck sensor element, so a colour
    image gets black and white specks rather than coloured ones.

    image: (H, W) or (H, W, C) float in [0, 1] -> same shape, float32.
    """
    image = np.asarray(image, dtype=np.float32)
    noisy = image.copy()
    height, width = image.shape[:2]
    count = round(amount * height * width)
    if count == 0:
        return noisy
    chosen = rng.choice(height * width, size=count, replace=False)
    rows, cols = np.unravel_index(chosen, (height, width))
    # the first half of the random draw is pepper, the rest salt: with an odd count salt gets the extra one
    values = np.zeros(count, dtype=np.float32)
    values[count // 2 :] = 1.0
    noisy[rows, cols] = values if image.ndim == 2 else values[:, None]
    return noisy


def apply_noise(image: np.ndarray, level: NoiseLevel, *, seed: int, index: int) -> np.ndarray:
    """``image`` with the noise of ``level``, drawn from a generator keyed by (seed, kind, amount, index).

    The same (seed, level, index) always gives the same noise, independently of which method asks or in
    which order, so all methods of a comparison are scored on identical inputs.

    image: (H, W) or (H, W, C) float in [0, 1] -> same shape, float32.
    """
    # the amount enters the key in millionths so that 0.1 and 0.10000000001 are the same level
    key = [seed, _KIND_CODES[level.kind], round(level.amount * 1_000_000), index]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    if level.kind == "gaussian":
        return gaussian_noise(image, level.amount, rng=rng)
    return salt_and_pepper(image, level.amount, rng=rng)


def noise_sweep(
    *, sigmas: Sequence[float] = (0.0, 0.05, 0.1, 0.2), salt_pepper: Sequence[float] = (0.05, 0.2)
) -> list[NoiseLevel]:
    """The levels of a sweep: the clean image first (once), then Gaussian sigmas, then salt-and-pepper amounts.

    >>> [level.key for level in noise_sweep(sigmas=(0, 0.1), salt_pepper=(0.05,))]
    ['clean', 'gaussian-0.1', 'salt_pepper-0.05']
    """
    levels = [NoiseLevel("gaussian", 0.0)]
    # a negative amount is refused by NoiseLevel, not dropped: the sweep must be what was asked for
    levels += [NoiseLevel("gaussian", float(sigma)) for sigma in sigmas if sigma != 0]
    levels += [NoiseLevel("salt_pepper", float(amount)) for amount in salt_pepper if amount != 0]
    return list(dict.fromkeys(levels))  # drop repeats, keep order
