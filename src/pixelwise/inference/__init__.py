"""Inference on images of any size: tiling maths, the tiled, Gaussian-blended Predictor, the backends that
run the network (PyTorch, ONNX Runtime), the InferenceSpec that describes it, and the ONNX export.

Nothing here imports torch or training code until a TorchBackend is built, a checkpoint is read or a model
exported: predicting with an .onnx file needs numpy and onnxruntime only.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Predictor": "pixelwise.inference.predictor",
    "InferenceSpec": "pixelwise.inference.spec",
    "Backend": "pixelwise.inference.backends",
    "ArrayBackend": "pixelwise.inference.backends",
    "TorchBackend": "pixelwise.inference.backends",
    "OnnxBackend": "pixelwise.inference.onnx_backend",
    "load_backend": "pixelwise.inference.backends",
    "export": "pixelwise.inference.onnx_export",
    "tile_starts": "pixelwise.inference.tiling",
    "tile_grid": "pixelwise.inference.tiling",
    "gaussian_importance_map": "pixelwise.inference.tiling",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixelwise.inference' has no attribute {name!r}")
