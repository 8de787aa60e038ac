"""Classical segmentation baselines: thresholds, edges, region growing and clustering, with no learning.

Where things are:

- ``registry``: the methods by name (``METHODS``, ``segment``, ``method_options``); each method is a plain
  function in ``threshold``, ``edges``, ``region`` or ``clustering`` returning a partition (regions, not
  classes).
- ``labeling``: from regions to classes: ``FittedLabeler`` (learned on training images) and the oracle
  upper bound (``oracle_labels``, always named ``oracle_name(method)``).
- ``segmenter``: ``ClassicalSegmenter``, a method and a labeler together, saved and loaded as JSON; what
  ``compare`` and the command line use.
"""

from __future__ import annotations

from pixelwise.classical.clustering import felzenszwalb, kmeans, slic
from pixelwise.classical.edges import canny_regions, sobel_watershed
from pixelwise.classical.labeling import ORACLE_SUFFIX, FittedLabeler, oracle_labels, oracle_name
from pixelwise.classical.region import region_grow
from pixelwise.classical.registry import METHODS, ORDERED_METHODS, check_options, list_methods, method_options, segment
from pixelwise.classical.segmenter import ClassicalSegmenter
from pixelwise.classical.threshold import local_threshold, multi_otsu, otsu

__all__ = [
    "METHODS",
    "ORACLE_SUFFIX",
    "ORDERED_METHODS",
    "ClassicalSegmenter",
    "FittedLabeler",
    "canny_regions",
    "check_options",
    "felzenszwalb",
    "kmeans",
    "list_methods",
    "local_threshold",
    "method_options",
    "multi_otsu",
    "oracle_labels",
    "oracle_name",
    "otsu",
    "region_grow",
    "segment",
    "slic",
    "sobel_watershed",
]
