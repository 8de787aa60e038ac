"""Segmentation networks: ``create_model(name, ...)`` over smp's architectures, FCN-8s and a small U-Net.

Names are resolved lazily so that importing ``pixelwise.models.pretrained`` (no torch at import) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "MODELS": "pixelwise.models.registry",
    "SegmentationNetwork": "pixelwise.models.network",
    "pad_amounts": "pixelwise.padding",
    "create_model": "pixelwise.models.registry",
    "list_models": "pixelwise.models.registry",
    "list_encoders": "pixelwise.models.registry",
    "model_options": "pixelwise.models.registry",
    "IMAGENET_MEAN": "pixelwise.models.pretrained",
    "IMAGENET_STD": "pixelwise.models.pretrained",
    "normalization_for": "pixelwise.models.pretrained",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixelwise.models' has no attribute {name!r}")
