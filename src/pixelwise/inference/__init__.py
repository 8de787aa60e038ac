"""Inference on images of any size: tiling maths (pure numpy) and the tiled, Gaussian-blended Predictor.

Names are resolved lazily so that the tiling maths can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Predictor": "pixelwise.inference.predictor",
    "Backend": "pixelwise.inference.predictor",
    "TorchBackend": "pixelwise.inference.predictor",
    "tile_starts": "pixelwise.inference.tiling",
    "tile_grid": "pixelwise.inference.tiling",
    "gaussian_importance_map": "pixelwise.inference.tiling",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixelwise.inference' has no attribute {name!r}")
