"""The classical methods by name: a new method is a function in one of the method modules and a line here.

Every method is a plain function ``method(image, **options) -> regions``: image (H, W) or (H, W, C)
float in [0, 1], regions (H, W) int32, a partition of the image (not classes). Its keyword-only parameters
are its options, with their defaults; ``segment(name, image, **options)`` calls one by name and refuses
options the method does not have.

>>> import numpy as np
>>> segment("otsu", np.array([[0.1, 0.9]]))
array([[0, 1]], dtype=int32)
>>> list_methods()[:3]
['otsu', 'multi_otsu', 'local_threshold']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pixelwise.classical.clustering import felzenszwalb, kmeans, slic
from pixelwise.classical.edges import canny_regions, sobel_watershed
from pixelwise.classical.region import region_grow
from pixelwise.classical.threshold import local_threshold, multi_otsu, otsu
from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.settings import no_such_option

METHODS: dict[str, Callable[..., np.ndarray]] = {
    "otsu": otsu,
    "multi_otsu": multi_otsu,
    "local_threshold": local_threshold,
    "sobel_watershed": sobel_watershed,
    "canny_regions": canny_regions,
    "region_grow": region_grow,
    "kmeans": kmeans,
    "slic": slic,
    "felzenszwalb": felzenszwalb,
}

# Methods whose region label means the same on every image (bins and clusters ordered by brightness), so a
# labeler can learn "label 1 is nucleus"; the others number their regions arbitrarily per image.
ORDERED_METHODS: frozenset[str] = frozenset({"otsu", "multi_otsu", "local_threshold", "kmeans"})


def list_methods() -> list[str]:
    """The method names, in the order of ``METHODS`` (thresholds, edges, region growing, clustering)."""
    return list(METHODS)


def method_options(name: str) -> dict[str, Any]:
    """The options of method ``name`` with their defaults, e.g. ``{"classes": 3, "bins": 256}``."""
    function = _method(name)
    return {
        parameter.name: parameter.default
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise PixelwiseError if method ``name`` does not exist or has no option called like a key of ``options``."""
    known = method_options(name)
    unknown = set(options) - set(known)
    if unknown:
        raise no_such_option(name, unknown, list(known), listing="its options are")


def segment(name: str, image: np.ndarray, **options: Any) -> np.ndarray:
    """Run method ``name`` on ``image``: (H, W) or (H, W, C) float in [0, 1] -> (H, W) int32 regions."""
    check_options(name, options)
    return METHODS[name](image, **options)


def _method(name: str) -> Callable[..., np.ndarray]:
    if name not in METHODS:
        raise PixelwiseError(
            f"unknown classical method {name!r}{did_you_mean(name, METHODS)}; choose from {', '.join(METHODS)}"
        )
    return METHODS[name]
