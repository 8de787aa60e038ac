"""The sinks of ordinary image files, each written whole at the end from the bands it was given.

- ``IndexMaskSink`` (``mask``): ``OUT/<name>.png``, a palette PNG whose values are the class labels (what
  ``pixelwise evaluate`` reads); ``data.io.write_mask``.
- ``RegionSink`` (``regions``): ``OUT/<name>.tif``, int32 region labels of a classical method (a partition,
  not classes: they may pass the 256 values of a palette PNG).
- ``OverlaySink`` (``overlay``): ``OUT/overlays/<name>.png``, the classes painted over the image with a legend.
- ``ProbabilitySink`` (``probabilities``): ``OUT/probabilities/<name>.npy``, float16 (K, H, W), written
  band by band into a memory-mapped file, so the probabilities never need to fit in memory.

With a model trained with the boundary class, the mask and the overlay show the user's classes
(``instances.fold_boundary``: each boundary pixel takes the class of the nearest object pixel) and the
probabilities are K - 1 (``fold_boundary_probabilities``: the boundary's share goes to the object classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.instances.io import PROBABILITY_FOLDER
from pixelwise.sinks.base import AtomicFile, PredictionBand

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo

OVERLAY_FOLDER = "overlays"
# rows of an overlay painted at once
OVERLAY_ROWS = 512


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
        from pixelwise.instances.boundary import fold_boundary

        write_mask(self.path, *fold_boundary(self.labels, self.classes))


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
    """The image's pixels gathered as RGB, then the classes painted over them at commit (after the boundary
    class, if any, is folded back: that needs the whole mask)."""

    def __init__(self, path: Path, info: ImageInfo, classes: ClassSpec) -> None:
        super().__init__(path, info, np.uint8)
        self.classes = classes
        self.picture = np.zeros((info.height, info.width, 3), np.uint8)

    def write(self, band: PredictionBand) -> None:
        super().write(band)
        if band.pixels is None:
            raise ValueError("an overlay needs the image's pixels")
        from pixelwise.data.io import picture_bands

        pixels = picture_bands(band.pixels)  # of a multispectral image, the model's first three bands
        if pixels.dtype != np.uint8:
            pixels = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
        self.picture[band.top : band.top + band.rows] = pixels  # grey repeated into the three channels

    def commit(self) -> None:
        from PIL import Image

        from pixelwise.data.io import overlay
        from pixelwise.files import atomic_path
        from pixelwise.instances.boundary import fold_boundary
        from pixelwise.report.legend import with_legend

        labels, classes = fold_boundary(self.labels, self.classes)
        for top in range(0, labels.shape[0], OVERLAY_ROWS):  # painted in bands: float copies of a band only
            rows = slice(top, top + OVERLAY_ROWS)
            self.picture[rows] = overlay(self.picture[rows].astype(np.float32) / np.float32(255), labels[rows], classes)
        with atomic_path(self.path) as tmp:
            Image.fromarray(with_legend(self.picture, labels, classes)).save(tmp, format="PNG")


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
        from pixelwise.instances.boundary import without_boundary

        self.file = AtomicFile(path)
        self.classes = classes
        shape = (without_boundary(classes).num_classes, info.height, info.width)
        self.values = np.lib.format.open_memmap(self.file.temporary, mode="w+", dtype=np.float16, shape=shape)

    def write(self, band: PredictionBand) -> None:
        from pixelwise.instances.boundary import fold_boundary_probabilities

        if band.probabilities is None:
            raise ValueError("the probability sink needs the probabilities")
        folded = fold_boundary_probabilities(band.probabilities, self.classes)
        self.values[:, band.top : band.top + band.rows] = folded

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
