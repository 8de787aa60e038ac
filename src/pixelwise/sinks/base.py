"""What a sink is: the band records it takes, the writer and sink protocols, and an atomic file across calls."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo


@dataclass(frozen=True)
class PredictionBand:
    """Rows [top, top + h) of one image's result.

    ``labels``: (h, W) class labels (uint8) or region labels (int32). ``probabilities``: (K, h, W) float32,
    when a sink asked for them. ``pixels``: (h, W, C) the input image's rows (uint8, or float in [0, 1]),
    when a sink asked for them.
    """

    top: int
    labels: np.ndarray
    probabilities: np.ndarray | None = None
    pixels: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])


class SinkWriter(Protocol):
    """One output file in the making: bands in, then ``commit`` (the file appears whole) or ``discard``."""

    def write(self, band: PredictionBand) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class MaskSink(Protocol):
    """A kind of output: which file it writes for an image, and the writer that makes it.

    ``needs_probabilities`` / ``needs_pixels``: the bands it is given carry them.
    """

    name: str
    needs_probabilities: bool
    needs_pixels: bool

    def path(self, out: Path, name: str) -> Path:
        """The file written for the image named ``name`` (its path relative to its input folder, without
        the suffix: ``a``, ``batch2/a``) in the folder ``out``."""
        ...

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> SinkWriter: ...


class AtomicFile:
    """A temporary file beside ``path`` (``files.atomic_path``) that becomes ``path`` on ``commit`` and
    vanishes on ``discard``: the life of a writer's file across calls."""

    def __init__(self, path: Path) -> None:
        from pixelwise.files import atomic_path

        self._stack = contextlib.ExitStack()
        self.temporary: Path = self._stack.enter_context(atomic_path(path))

    def commit(self) -> None:
        self._stack.close()

    def discard(self) -> None:
        self._stack.__exit__(_Discarded, _Discarded(), None)


class _Discarded(Exception):
    """Thrown into ``atomic_path`` to make it remove its temporary file."""
