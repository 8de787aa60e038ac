"""Inference on images of any size: tiling maths, the tiled, Gaussian-blended Predictor, the backends that
run the network (PyTorch, ONNX Runtime), the InferenceSpec that describes it, and the ONNX export.

Nothing here imports torch or training code until a TorchBackend is built, a checkpoint is read or a model
exported: predicting with an .onnx file needs numpy and onnxruntime only.
"""

from __future__ import annotations

import lazy_loader

# the public names, by the module that defines them, are in __init__.pyi (read here and by type checkers)
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
