"""Segmentation networks: ``create_model(name, ...)`` over smp's architectures, FCN-8s and a small U-Net.

Names are resolved lazily so that importing ``pixelwise.models.pretrained`` (no torch at import) stays light.
"""

from __future__ import annotations

import lazy_loader

# module -> the public names it defines (attached lazily, as in pixelwise/__init__.py)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "registry": ["MODELS", "create_model", "list_models", "list_encoders", "model_options"],
        "network": ["SegmentationNetwork"],
        "pretrained": ["IMAGENET_MEAN", "IMAGENET_STD", "normalization_for"],
    },
)
