# The public API, attached lazily at run time by lazy_loader.attach_stub from this very file (scikit-image's
# mechanism): the one table of public names, which type checkers read too.
from . import adversarial, classical, comparison, data, inference, instances, losses, metrics, models, report, train
from .comparison import compare
from .data.builtin import list_builtin, load_builtin
from .data.classes import ClassSpec
from .data.folder import SegmentationFolder
from .data.io import read_image, read_mask, write_mask
from .errors import PixelwiseError
from .inference.onnx_export import export
from .inference.predictor import Predictor
from .inference.spec import InferenceSpec
from .metrics import ConfusionMatrix, boundary_f1, evaluate
from .models.registry import create_model, list_models
from .train.config import TrainConfig
from .train.loop import fit

__version__: str

__all__ = [
    "ClassSpec",
    "ConfusionMatrix",
    "InferenceSpec",
    "PixelwiseError",
    "Predictor",
    "SegmentationFolder",
    "TrainConfig",
    "__version__",
    "adversarial",
    "boundary_f1",
    "classical",
    "compare",
    "comparison",
    "create_model",
    "data",
    "evaluate",
    "export",
    "fit",
    "inference",
    "instances",
    "list_builtin",
    "list_models",
    "load_builtin",
    "losses",
    "metrics",
    "models",
    "read_image",
    "read_mask",
    "report",
    "train",
    "write_mask",
]
