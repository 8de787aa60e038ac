"""Masks of any size as tiled, pyramidal TIFFs: ``OUT/<name>.tif``.

The file is what OpenSlide calls a generic tiled TIFF: level 0 then its reductions by 2 (NewSubfileType 1,
top-level pages, as libvips writes them) until a level fits in one tile, each in ``TILE`` × ``TILE`` tiles,
deflate-compressed. The pixels are the class labels; the palette (TIFF colour map) gives each class its
colour, so QuPath, OpenSlide (tiffslide) and any viewer show the classes in colour while tifffile and
``pixelwise evaluate`` (``data.io.read_mask``) read the labels. The ImageDescription of level 0 holds the
classes (names, colours, ignore index) as JSON; the resolution tags hold the microns per pixel where the
input said them. Reductions keep every second pixel (labels are not averaged). Large files are BigTIFF.

The rows are spilled as their bands finish (``sinks.spill``) and the TIFF is written from the spill at the
end, atomically: a killed run resumes at its last finished block of ``TILE`` rows, and the file appears
whole or not at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.sinks.base import PredictionBand
from pixelwise.sinks.spill import BlockCollector, RowSpill, spill_path

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.image_info import ImageInfo

TILE = 512
MASK_FORMAT = "pixelwise-mask/1"
# past this many bytes of uncompressed pixels a classic TIFF's 32-bit offsets may not reach: BigTIFF
_BIGTIFF_BYTES = 2**31


class TiledMaskSink:
    """Class masks as tiled pyramidal TIFFs, ``OUT/<name>.tif``, resumable.

    ``key``: what makes two runs the same (a job's settings): a spill of another key is started over.
    ``resume``: False starts every image over (``--overwrite``).
    """

    name = "tiled-mask"
    needs_probabilities = False
    needs_pixels = False

    def __init__(self, *, key: str = "", resume: bool = True) -> None:
        self.key = key
        self.resume = resume

    def path(self, out: Path, name: str) -> Path:
        return out / f"{name}.tif"

    def resume_row(self, path: Path, info: ImageInfo) -> int:
        """The rows of ``path`` an earlier run of the same settings finished (0: none)."""
        if not self.resume:
            return 0
        return RowSpill.rows_held(
            spill_path(path), key=self.key, shape=(info.height, info.width), dtype="uint8", rows=TILE
        )

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> TiledMaskWriter:
        if classes is None:
            raise ValueError("a class mask needs the classes")
        return TiledMaskWriter(path, info, classes, self._spill(path, info))

    def _spill(self, path: Path, info: ImageInfo) -> RowSpill:
        return RowSpill(
            spill_path(path),
            key=self.key,
            shape=(info.height, info.width),
            dtype="uint8",
            rows=TILE,
            resume=self.resume,
        )


class TiledMaskWriter:
    def __init__(self, path: Path, info: ImageInfo, classes: ClassSpec, spill: RowSpill) -> None:
        self.path, self.info, self.classes, self.spill = path, info, classes, spill
        self.blocks = BlockCollector(
            height=info.height, rows=TILE, start=spill.rows_done, tail=(info.width,), dtype="uint8"
        )

    def write(self, band: PredictionBand) -> None:
        for _, block in self.blocks.add(band.top, band.labels):
            self.spill.append(block)

    def commit(self) -> None:
        import tifffile

        from pixelwise.files import atomic_path

        if not self.blocks.complete:
            raise ValueError(f"{self.path}: rows {self.blocks.next}.. never came")
        colormap = self.classes.palette().T.astype(np.uint16) * 257
        description = json.dumps({"format": MASK_FORMAT, "classes": self.classes.to_dict(), "mpp": self.info.mpp})
        height, width = self.info.height, self.info.width
        with atomic_path(self.path) as tmp, tifffile.TiffWriter(tmp, bigtiff=height * width > _BIGTIFF_BYTES) as tiff:
            for level, (level_height, level_width) in enumerate(pyramid_shapes(height, width)):
                step = 2**level
                resolution = None if self.info.mpp is None else (1e4 / (self.info.mpp * step),) * 2
                tiff.write(
                    self._tiles(step, level_height, level_width),
                    shape=(level_height, level_width),
                    dtype=np.uint8,
                    tile=(TILE, TILE),
                    photometric="palette",
                    colormap=colormap,
                    compression="zlib",
                    subfiletype=1 if level else 0,
                    description=description if level == 0 else None,
                    metadata=None,
                    resolution=resolution,
                    resolutionunit="CENTIMETER" if resolution else None,
                )
        self.spill.remove()

    def discard(self) -> None:
        # the spill stays for the next run of the same job to resume from (files.is_bookkeeping hides it),
        # unless it holds nothing
        if self.spill.blocks:
            self.spill.close()
        else:
            self.spill.remove()

    def _tiles(self, step: int, height: int, width: int) -> Iterator[np.ndarray]:
        """The ``TILE`` × ``TILE`` tiles of the level that keeps every ``step``-th pixel, row by row (edge tiles
        padded with 0), from the spill."""
        row_band = np.zeros((TILE, math.ceil(width / TILE) * TILE), np.uint8)
        filled = 0
        for top, block in self.spill.read_blocks():
            kept = block[(-top) % step :: step, ::step]
            while len(kept):
                taken = min(TILE - filled, len(kept))
                row_band[filled : filled + taken, :width] = kept[:taken]
                filled, kept = filled + taken, kept[taken:]
                if filled == TILE:
                    yield from _split(row_band)
                    filled = 0
        if filled:
            row_band[filled:] = 0
            yield from _split(row_band)


def pyramid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """(height, width) of level 0 and of each reduction by 2, down to the first level that fits one tile."""
    shapes = [(height, width)]
    while max(shapes[-1]) > TILE:
        step = 2 ** len(shapes)
        shapes.append((math.ceil(height / step), math.ceil(width / step)))
    return shapes


def _split(row_band: np.ndarray) -> Iterator[np.ndarray]:
    # copies: tifffile may hold several tiles while it compresses, and the band is reused
    for left in range(0, row_band.shape[1], TILE):
        yield row_band[:, left : left + TILE].copy()
