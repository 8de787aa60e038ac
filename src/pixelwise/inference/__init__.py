"""Inference on images of any size: tiling maths, the tiled, Gaussian-blended Predictor, the backends that
run the network (PyTorch, ONNX Runtime), the InferenceSpec that describes it, and the ONNX export.

Nothing here imports torch or training code until a TorchBackend is built, a checkpoint is read or a model
exported: predicting with an .onnx file needs numpy and onnxruntime only.
"""

from __future__ import annotations

import lazy_loader

# module -> the public names it defines (attached lazily, as in pixelwise/__init__.py)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "predictor": ["Predictor"],
        "spec": ["InferenceSpec"],
        "backends": ["Backend", "ArrayBackend", "TorchBackend", "load_backend"],
        "onnx_backend": ["OnnxBackend"],
        "onnx_export": ["export"],
        "tiling": ["tile_starts", "tile_grid", "gaussian_importance_map"],
    },
)
