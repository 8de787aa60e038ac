"""pixelwise: image semantic segmentation — classical baselines, CNNs and adversarial training, compared.

The public API is attached lazily with scikit-image's ``lazy_loader``, so that ``import pixelwise`` does not
import torch until a model, a trainer or a predictor is asked for. ``__init__.pyi`` says everything: the
subpackages reachable as ``pixelwise.<name>``, and the public names by the module that defines them; the
same file gives type checkers the types (``pw.Predictor.load`` is typed, not Any). No public name is also
the name of a module of the package (a test checks it): were one, importing that module would replace the
attribute, and ``pixelwise.compare`` would be the function on one look-up and the module on the next.
"""

from __future__ import annotations

import lazy_loader

__version__ = "0.1.0"

# the public names, by the module that defines them, are in __init__.pyi: read here and by type checkers
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
__all__ += ["__version__"]
