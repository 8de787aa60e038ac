"""Run classical, CNN and adversarial segmentation side by side on one test split, clean and with noise.

Where things are (a new compared method is a ``Method`` in ``methods``, or your own passed to ``compare``):

- ``methods``: ``Method`` (name, family, ``fit``, ``predict``), ``ClassicalMethod``, ``NetworkMethod``,
  ``build_methods`` from names (``otsu``, ``otsu-oracle``, ``cnn``, ``adversarial``, ``semi``).
- ``run``: ``compare``, which fits, predicts every test image clean and at every noise level, and scores.
- ``examples``: the test images shown in the report, saved with every method's prediction.
- ``held_out``: the test split's images, read once (``HeldOutImages``).
- ``results``: fills and writes ``results.json`` (its records and schema: ``pixelwise.report.results``;
  ``ComparisonResults`` is what ``compare`` returns).

``pixelwise.compare`` is ``compare`` itself (this package is ``pixelwise.comparison``, so the name of the
function never meets the name of a module).
"""

from __future__ import annotations

from pixelwise.comparison.methods import (
    NETWORK_METHODS,
    ClassicalMethod,
    Method,
    NetworkMethod,
    build_methods,
    default_method_names,
)
from pixelwise.comparison.results import FORMAT
from pixelwise.comparison.run import compare
from pixelwise.report.results import ComparisonResults, MethodResult

__all__ = [
    "FORMAT",
    "NETWORK_METHODS",
    "ClassicalMethod",
    "ComparisonResults",
    "Method",
    "MethodResult",
    "NetworkMethod",
    "build_methods",
    "compare",
    "default_method_names",
]
