"""Mask sinks: where what a prediction produces goes, a band of rows at a time or whole.

A ``MaskSink`` names the file it writes for an image (``path(out, name)``) and opens a ``SinkWriter`` for
it, which takes ``PredictionBand`` records top to bottom (labels, and the probabilities or the input's
pixels when the sink asks for them) and either ``commit``s the file whole or ``discard``s it, leaving
nothing: every file a sink writes appears atomically. A sink that joins its images' files into one (the
objects' tables) also has ``finish(out, names)``, which the job calls once its images are done.

A model trained with the boundary class (``instances.boundary``) predicts one class more than the user's:
the mask, overlay and probability sinks fold it back (``fold_boundary``), so what they write names only
the user's classes; the instances sink takes the boundary as it is, to part touching objects.

``SINKS`` is the one registry of sinks: a name (what a command's flag asks for) -> a factory taking the
sink's options. A new output format (a tiled pyramidal TIFF, a GeoTIFF, instance labels) is one class in
its own module and one line here. The job that feeds them is ``pixelwise.jobs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.instances.io import INSTANCES_FOLDER, PROBABILITY_FOLDER
from pixelwise.sinks import geotiff, images, objects, ome_zarr, tiled_tiff
from pixelwise.sinks.base import AtomicFile, MaskSink, PredictionBand, SinkWriter

# name -> factory(**options)
SINKS: dict[str, Callable[..., MaskSink]] = {
    "mask": images.IndexMaskSink,
    "regions": images.RegionSink,
    "overlay": images.OverlaySink,
    "probabilities": images.ProbabilitySink,
    "tiled-mask": tiled_tiff.TiledMaskSink,
    "probabilities-zarr": ome_zarr.OmeZarrProbabilitySink,
    "geotiff": geotiff.GeoTiffMaskSink,
    "instances": objects.InstanceSink,
}


# the sub-folders of an output folder that hold what is not a mask (overlays, probabilities ...): a
# prediction folder read back (``pixelwise evaluate``) leaves them out
SIDE_FOLDERS = frozenset({images.OVERLAY_FOLDER, PROBABILITY_FOLDER, INSTANCES_FOLDER})


def make_sink(name: str, **options: Any) -> MaskSink:
    """The sink registered as ``name``, made with ``options``."""
    if name not in SINKS:
        raise PixelwiseError(f"no output {name!r}{did_you_mean(name, SINKS)}; choose one of {', '.join(SINKS)}")
    return SINKS[name](**options)


__all__ = ["SIDE_FOLDERS", "SINKS", "AtomicFile", "MaskSink", "PredictionBand", "SinkWriter", "make_sink"]
