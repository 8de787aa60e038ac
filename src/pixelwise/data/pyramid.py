"""Pyramid levels: which level of an image to read, by number (``--level N``) or by resolution (``--mpp X``,
or the resolution a model was trained at).

A source with levels (``data.tiled``, ``data.slides``) has ``level(index) -> ImageSource``; any other source
has level 0 only. By resolution, the level nearest in scale (by the ratio of microns per pixel) is read;
nothing is resampled, so a level more than ``MPP_TOLERANCE`` off the resolution asked for is said in a note.
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol, runtime_checkable

from pixelwise.data.sources import ImageSource
from pixelwise.errors import InputError, PixelwiseError

MPP_TOLERANCE = 0.1


@runtime_checkable
class Pyramid(Protocol):
    """A source that can open its other pyramid levels."""

    def level(self, index: int) -> ImageSource: ...


def level_mpps(source: ImageSource) -> list[float] | None:
    """Microns per pixel of every level (full resolution first), or None when the image does not say."""
    info = source.info
    if info.mpp is None:
        return None
    full = info.mpp * info.width / info.levels[0][1]
    return [full * info.levels[0][1] / width for _, width in info.levels]


def at_level(
    source: ImageSource, *, level: int | None = None, mpp: float | None = None, model_mpp: float | None = None
) -> ImageSource:
    """The level of ``source`` to predict on: ``level``, else the one nearest ``mpp``, else the one nearest
    ``model_mpp`` when both the model and the image say their resolution, else ``source`` (level 0).

    ``source`` is a full-resolution source as ``open_image`` gives it, closed when another level is returned. A level that does not exist, or ``mpp`` for
    an image without a resolution, is an InputError naming the file.
    """
    if level is not None and mpp is not None:
        raise PixelwiseError("--level and --mpp exclude each other: give the level, or the resolution to pick it by")
    count = len(source.info.levels)
    if level is None:
        level = _level_for(source, mpp, model_mpp)
    if level is None or level == 0:
        return source  # opened at full resolution
    if not 0 <= level < count:
        listed = ", ".join(f"{index}: {width} × {height}" for index, (height, width) in enumerate(source.info.levels))
        source.close()
        raise InputError(
            f"{source.name}: there is no level {level}; the image has {count} (level {listed}); "
            f"give --level 0 to {count - 1}"
        )
    if not isinstance(source, Pyramid):
        return source
    try:
        chosen = source.level(level)
    finally:
        source.close()
    return chosen


def _level_for(source: ImageSource, mpp: float | None, model_mpp: float | None) -> int | None:
    wanted = mpp if mpp is not None else model_mpp
    if wanted is None:
        return None
    if not wanted > 0:
        raise PixelwiseError(f"--mpp must be a positive number of microns per pixel, got {wanted}")
    mpps = level_mpps(source)
    if mpps is None:
        if mpp is not None:
            raise InputError(
                f"{source.name}: the file does not say its resolution (microns per pixel), so --mpp cannot pick a "
                "level; give --level N instead"
            )
        warnings.warn(
            f"the model was trained at {model_mpp:g} µm/px but the image does not say its resolution: predicting at "
            "full resolution (--level N picks another level)",
            stacklevel=3,
        )
        return None
    chosen = min(range(len(mpps)), key=lambda index: abs(math.log(mpps[index] / wanted)))
    if abs(mpps[chosen] / wanted - 1) > MPP_TOLERANCE:
        warnings.warn(
            f"no level is at {wanted:g} µm/px; predicting on level {chosen} at {mpps[chosen]:.3g} µm/px, the nearest",
            stacklevel=3,
        )
    elif mpp is None and chosen:
        warnings.warn(
            f"the model was trained at {wanted:g} µm/px: predicting on level {chosen} ({mpps[chosen]:.3g} µm/px)",
            stacklevel=3,
        )
    return chosen
