"""The sinks of ordinary image files, each written whole at the end from the bands it was given.

- ``IndexMaskSink`` (``mask``): ``OUT/<name>.png``, a palette PNG whose values are the class labels (what
  ``pixelwise evaluate`` reads); ``data.io.write_mask``.
- ``RegionSink`` (``regions``): ``OUT/<name>.tif``, int32 region labels of a classical method (a partition,
  not classes: they may pass the 256 values of a palette PNG).
- ``OverlaySink`` (``overlay``): ``OUT/overlays/<name>.png``, the classes painted over the image with a legend.
- ``ProbabilitySink`` (``probabilities``): ``OUT/probabilities/<name>.npy``, float16 (K, H, W), written
  band by band into a memory-mapped file, so the probabilities never need to fit in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.sinks.base import AtomicFile, PredictionBand

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo

OVERLAY_FOLDER = "overlays"
PROBABILITY_FOLDER = "probabilities"


class _WholeImage:
    """Collects the labels (and, when ``with_pixels``, an image computed per band) of one image, then writes
    them at ``commit`` through ``save(path, labels, picture)``."""

    def __init__(self, path: Path, info: ImageInfo, dtype: type) -> None:
        self.path = path
        self.labels: np.ndarray = np.zeros((info.height, info.width), dtype)

    def write(self, band: PredictionBand) -> None:
        self.labels[band.top : band.top + band.rows] = band.labels

    def discard(self) -> None:
        pass


class _MaskWriter(_WholeImage):
    def __init__(self, path: Path, info: ImageInfo, classes: ClassSpec) -> None:
        super().__init__(path, info, np.uint8)
        self.classes = classes

    def commit(self) -> None:
        from pixelwise.data.io import write_mask

        write_mask(self.path, self.labels, self.classes)


class IndexMaskSink:
    """Class masks as palette PNGs, ``OUT/<name>.png``."""

    name = "mask"
    needs_probabilities = False
    needs_pixels = False

    def path(self, out: Path, name: str) -> Path:
        return out / f"{name}.png"

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> _MaskWriter:
        if classes is None:
            raise ValueError("a class mask needs the classes")
        return _MaskWriter(path, info, classes)


class _RegionWriter(_WholeImage):
    def __init__(self, path: Path, info: ImageInfo) -> None:
        super().__init__(path, info, np.int32)

    def commit(self) -> None:
        import tifffile

        from pixelwise.files import atomic_path

        with atomic_path(self.path) as tmp:
            tifffile.imwrite(tmp, self.labels, compression="zlib")


class RegionSink:
    """Region labels of a partition as int32 TIFF, ``OUT/<name>.tif``."""

    name = "regions"
    needs_probabilities = False
    needs_pixels = False

    def path(self, out: Path, name: str) -> Path:
        return out / f"{name}.tif"

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> _RegionWriter:
        return _RegionWriter(path, info)


class _OverlayWriter(_WholeImage):
    def __init__(self, path: Path, info: ImageInfo, classes: ClassSpec) -> None:
        super().__init__(path, info, np.uint8)
        self.classes = classes
        self.picture = np.zeros((info.height, info.width, 3), np.uint8)

    def write(self, band: PredictionBand) -> None:
        from pixelwise.data.io import overlay

        super().write(band)
        if band.pixels is None:
            raise ValueError("an overlay needs the image's pixels")
        pixels = band.pixels
        image = pixels.astype(np.float32) / np.float32(255) if pixels.dtype == np.uint8 else pixels
        self.picture[band.top : band.top + band.rows] = overlay(image, band.labels, self.classes)

    def commit(self) -> None:
        from PIL import Image

        from pixelwise.files import atomic_path
        from pixelwise.report.legend import with_legend

        with atomic_path(self.path) as tmp:
            Image.fromarray(with_legend(self.picture, self.labels, self.classes)).save(tmp, format="PNG")


class OverlaySink:
    """The classes over the image, with a legend of the classes shown: ``OUT/overlays/<name>.png``."""

    name = "overlay"
    needs_probabilities = False
    needs_pixels = True

    def path(self, out: Path, name: str) -> Path:
        return out / OVERLAY_FOLDER / f"{name}.png"

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> _OverlayWriter:
        if classes is None:
            raise ValueError("an overlay needs the classes")
        return _OverlayWriter(path, info, classes)


class _ProbabilityWriter:
    def __init__(self, path: Path, info: ImageInfo, classes: ClassSpec) -> None:
        self.file = AtomicFile(path)
        shape = (classes.num_classes, info.height, info.width)
        self.values = np.lib.format.open_memmap(self.file.temporary, mode="w+", dtype=np.float16, shape=shape)

    def write(self, band: PredictionBand) -> None:
        if band.probabilities is None:
            raise ValueError("the probability sink needs the probabilities")
        self.values[:, band.top : band.top + band.rows] = band.probabilities

    def commit(self) -> None:
        self.values.flush()
        del self.values
        self.file.commit()

    def discard(self) -> None:
        del self.values
        self.file.discard()


class ProbabilitySink:
    """Class probabilities, float16 (K, H, W) ``.npy``: ``OUT/probabilities/<name>.npy``."""

    name = "probabilities"
    needs_probabilities = True
    needs_pixels = False

    def path(self, out: Path, name: str) -> Path:
        return out / PROBABILITY_FOLDER / f"{name}.npy"

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> _ProbabilityWriter:
        if classes is None:
            raise ValueError("probabilities need the classes")
        return _ProbabilityWriter(path, info, classes)
