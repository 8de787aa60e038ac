# The public names of pixelwise.models, attached lazily by lazy_loader.attach_stub from this file.
from .network import SegmentationNetwork
from .pretrained import IMAGENET_MEAN, IMAGENET_STD, normalization_for
from .registry import MODELS, create_model, list_encoders, list_models, model_options

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "SegmentationNetwork",
    "create_model",
    "list_encoders",
    "list_models",
    "model_options",
    "normalization_for",
]
