"""How a dataset folder reads its images: which bands, which pixels hold no data, and their scaling.

``FolderBands`` is ``SegmentationFolder``'s reading rule (``data.bands`` says what each part means):

- nothing raster-specific (grey or RGB images, no ``bands``, no ``nodata``, per-image or uint8 scaling): every
  image is read by ``data.io.read_image`` exactly as before bands existed, and ``input_bands`` is None (a
  model trained on it records nothing new);
- otherwise images are read by ``data.rasters`` with the band selection, the no-data value (the user's, else
  each file's) and, where the rule asks for it, the per-band ranges of the dataset's *training* images
  (``input_bands.ranges``: computed once, lazily, by every split of the same folder alike, so that training,
  validation and test images are scaled the same way, and stored with the model).

``check`` reads the headers of every image and refuses, before any work, a band selection beyond a file, a
dataset whose images have different band counts, and a mask whose georeference differs from its image's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pixelwise.data.bands import (
    SCALINGS,
    Band,
    BandRanges,
    InputBands,
    band_indices,
    dataset_ranges,
    wants_dataset_ranges,
)
from pixelwise.data.channels import convertible
from pixelwise.data.image_info import ImageInfo
from pixelwise.data.raster_files import is_raster, raster_info, same_place
from pixelwise.errors import PixelwiseError

# training images the band ranges are drawn from (evenly spread), and the values read from each at most
RANGE_IMAGES = 256
RANGE_VALUES_PER_IMAGE = 1 << 22
# band ranges per set of training files (path, size, modification time), selection and no-data value: the
# train and val folders of one dataset compute them once
_ranges: dict[tuple[object, ...], BandRanges] = {}


class FolderBands:
    """The reading rule of a folder whose images are ``images`` and whose training images are ``training``.

    ``given``: a model's rule (its bands, no-data value and ranges), used as it is. Else ``selection``,
    ``nodata`` and ``scaling`` (``auto``, ``image``, ``dataset``; see ``data.bands``) decide it.
    """

    def __init__(
        self,
        images: Sequence[Path],
        training: Sequence[Path],
        *,
        selection: Sequence[Band] = (),
        nodata: float | None = None,
        scaling: str = "auto",
        given: InputBands | None = None,
    ) -> None:
        self.training = list(training) or list(images)
        self.selection = tuple(given.selection if given is not None else selection)
        self.nodata = given.nodata if given is not None else nodata
        self.given = given
        first = images[0]
        self.first: ImageInfo | None = raster_info(first) if self.selection or is_raster(first) else None
        if scaling not in SCALINGS:
            raise PixelwiseError(f"scaling {scaling!r}: choose one of {', '.join(SCALINGS)}")
        # plain grey or RGB files are scaled per image unless the dataset rule is forced: then their type decides
        info = self.first or (raster_info(first) if scaling == "dataset" and given is None else None)
        wants_ranges = (
            given is None
            and info is not None
            and wants_dataset_ranges(
                scaling,
                dtype=info.dtype,
                bands=len(self.selection) or info.bands,
                georeferenced=info.georeference is not None,
                selected=bool(self.selection),
            )
        )
        self.wants_ranges = wants_ranges
        self.plain = given is None and not self.selection and nodata is None and not wants_ranges
        self._input_bands: InputBands | None = given
        self._resolved = given is not None

    def channels(self, first: Path) -> int:
        """The channels of the folder's images: the selection's, else the first image's."""
        from pixelwise.data.io import read_image

        if self.selection:
            return len(self.selection)
        if self.first is not None:
            return self.first.bands
        return int(read_image(first).shape[2])

    @property
    def input_bands(self) -> InputBands | None:
        """What a model trained on this folder records (None when nothing raster-specific); the band ranges
        are computed here, once, from the training images."""
        if not self._resolved:
            ranges = self._dataset_ranges() if self.wants_ranges else None
            if self.selection or self.nodata is not None or ranges is not None:
                self._input_bands = InputBands(self.selection, self.nodata, ranges)
            self._resolved = True
        return self._input_bands

    def read(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """An image by the rule: (H, W, C) float32 in [0, 1], and its no-data pixels (or None)."""
        from pixelwise.data.io import read_image

        if self.plain and not is_raster(path):
            return read_image(path), None
        from pixelwise.data.rasters import read_bands

        rule = self.input_bands or InputBands(self.selection, self.nodata)
        return read_bands(path, input_bands=rule)

    def check(self, images: Sequence[Path], masks: Sequence[Path], channels: int) -> None:
        """Every image's bands fit the folder's (``channels``), every georeferenced mask lies where its image
        does: each problem one PixelwiseError naming the files and the fix. Reads headers only."""
        for image, mask in zip(images, masks, strict=True):
            if not self.selection and channels in (1, 3) and not is_raster(image) and not is_raster(mask):
                continue  # a PNG, JPEG or BMP is grey or RGB: it converts; no georeference to compare
            info = raster_info(image)
            if self.selection:
                band_indices(self.selection, count=info.bands, names=info.band_names, file=str(image))
            elif not convertible(info.bands, channels):
                raise _different_bands(image, info.bands, images[0], channels)
            if info.georeference is None or mask.suffix.lower() not in (".tif", ".tiff"):
                continue
            placed = raster_info(mask).georeference
            if placed is not None and not same_place(placed, info.georeference):
                raise PixelwiseError(
                    f"mask {mask} lies elsewhere than its image {image} ({_where(placed)} vs {_where(info.georeference)}); "
                    "give the mask its image's CRS and transform (or none: it is then taken as the image's grid)"
                )

    def _dataset_ranges(self) -> BandRanges:
        from pixelwise.data.rasters import sample_bands

        count = min(RANGE_IMAGES, len(self.training))
        chosen = [self.training[int(i)] for i in np.linspace(0, len(self.training) - 1, count)]
        key = (tuple(_stamp(path) for path in chosen), self.selection, self.nodata)
        if key not in _ranges:
            rule = InputBands(self.selection, self.nodata)

            def samples() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
                bands = None
                for path in chosen:
                    values, missing = sample_bands(path, input_bands=rule, values=RANGE_VALUES_PER_IMAGE)
                    bands = bands or values.shape[2]
                    if values.shape[2] != bands:
                        raise _different_bands(path, values.shape[2], chosen[0], bands)
                    yield values, missing

            _ranges[key] = dataset_ranges(samples(), images_count=len(chosen))
        return _ranges[key]


def _different_bands(image: Path, bands: int, first: Path, expected: int) -> PixelwiseError:
    return PixelwiseError(
        f"{image} has {bands} band{'s' if bands > 1 else ''} but {first} has {expected}; give every image of a "
        "dataset the same bands, or pick the same ones from each with --bands"
    )


def _stamp(path: Path) -> tuple[str, int, int]:
    status = path.stat()
    return str(path), status.st_size, status.st_mtime_ns


def _where(georeference: object) -> str:
    crs = getattr(georeference, "crs", "?")
    transform = getattr(georeference, "transform", ())
    origin = (
        f"origin {transform[2]:g}, {transform[5]:g}, pixel {transform[0]:g} x {transform[4]:g}" if transform else ""
    )
    return f"{crs}, {origin}"
