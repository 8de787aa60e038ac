"""pixelwise: image semantic segmentation — classical baselines, CNNs and adversarial training, compared.

The public API is re-exported here lazily, so that ``import pixelwise`` does not import torch until a
model, a trainer or a predictor is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "PixelwiseError": "pixelwise.errors",
    "ClassSpec": "pixelwise.data.classes",
    "read_image": "pixelwise.data.io",
    "read_mask": "pixelwise.data.io",
    "write_mask": "pixelwise.data.io",
    "SegmentationFolder": "pixelwise.data.folder",
    "load_builtin": "pixelwise.data.builtin",
    "list_builtin": "pixelwise.data.builtin",
    "ConfusionMatrix": "pixelwise.metrics",
    "evaluate": "pixelwise.metrics",
    "boundary_f1": "pixelwise.metrics",
    "create_model": "pixelwise.models.registry",
    "list_models": "pixelwise.models.registry",
    "TrainConfig": "pixelwise.train.config",
    "fit": "pixelwise.train.loop",
    "Predictor": "pixelwise.inference.predictor",
    "InferenceSpec": "pixelwise.inference.spec",
    "export": "pixelwise.inference.onnx_export",
    "compare": "pixelwise.compare",
}
_SUBMODULES = {"classical", "data", "models", "adversarial", "train", "inference", "metrics", "losses", "report"}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"pixelwise.{name}")
    raise AttributeError(f"module 'pixelwise' has no attribute {name!r}")
