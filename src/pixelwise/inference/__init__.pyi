# The public names of pixelwise.inference, attached lazily by lazy_loader.attach_stub from this file.
from .backends import RUNTIMES, ArrayBackend, Backend, TorchBackend, load_backend
from .onnx_backend import OnnxBackend
from .onnx_export import export
from .openvino_backend import OpenVinoBackend
from .predictor import Predictor
from .spec import InferenceSpec
from .tiling import gaussian_importance_map, tile_grid, tile_starts

__all__ = [
    "RUNTIMES",
    "ArrayBackend",
    "Backend",
    "InferenceSpec",
    "OnnxBackend",
    "OpenVinoBackend",
    "Predictor",
    "TorchBackend",
    "export",
    "gaussian_importance_map",
    "load_backend",
    "tile_grid",
    "tile_starts",
]
