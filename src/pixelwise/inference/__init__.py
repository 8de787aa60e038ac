"""Inference on images of any size: tiling maths, the tiled, Gaussian-blended Predictor (numpy), the
backends that run the network and the InferenceSpec that describes it.

Nothing here imports torch or training code until a TorchBackend is built or a checkpoint is read.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Predictor": "pixelwise.inference.predictor",
    "InferenceSpec": "pixelwise.inference.spec",
    "Backend": "pixelwise.inference.backends",
    "TorchBackend": "pixelwise.inference.backends",
    "load_backend": "pixelwise.inference.backends",
    "tile_starts": "pixelwise.inference.tiling",
    "tile_grid": "pixelwise.inference.tiling",
    "gaussian_importance_map": "pixelwise.inference.tiling",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixelwise.inference' has no attribute {name!r}")
