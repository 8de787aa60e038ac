"""Segmentation networks: ``create_model(name, ...)`` over smp's architectures, FCN-8s and a small U-Net.

Names are resolved lazily so that importing ``pixelwise.models.pretrained`` (no torch at import) stays light.
"""

from __future__ import annotations

import lazy_loader

# the public names, by the module that defines them, are in __init__.pyi (read here and by type checkers)
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
