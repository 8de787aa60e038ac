"""pixelwise: image semantic segmentation — classical baselines, CNNs and adversarial training, compared.

The public API is attached lazily with scikit-image's ``lazy_loader``, so that ``import pixelwise`` does not
import torch until a model, a trainer or a predictor is asked for. Two tables say everything: the
subpackages reachable as ``pixelwise.<name>``, and the public names by the module that defines them. No
public name is also the name of a module of the package (a test checks it): were one, importing that
module would replace the attribute, and ``pixelwise.compare`` would be the function on one look-up and
the module on the next.
"""

from __future__ import annotations

import lazy_loader

__version__ = "0.1.0"

_SUBPACKAGES = [
    "adversarial",
    "classical",
    "comparison",
    "data",
    "inference",
    "losses",
    "metrics",
    "models",
    "report",
    "train",
]
# module (relative to pixelwise) -> the public names it defines
_PUBLIC_NAMES = {
    "errors": ["PixelwiseError"],
    "data.classes": ["ClassSpec"],
    "data.io": ["read_image", "read_mask", "write_mask"],
    "data.folder": ["SegmentationFolder"],
    "data.builtin": ["load_builtin", "list_builtin"],
    "metrics": ["ConfusionMatrix", "evaluate", "boundary_f1"],
    "models.registry": ["create_model", "list_models"],
    "train.config": ["TrainConfig"],
    "train.loop": ["fit"],
    "inference.predictor": ["Predictor"],
    "inference.spec": ["InferenceSpec"],
    "comparison": ["compare"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submodules=_SUBPACKAGES, submod_attrs=_PUBLIC_NAMES)
__all__ += ["__version__"]
