"""``GeoTiffMaskSink`` (``geotiff``): class masks as tiled GeoTIFFs that lie where their images lie.

``OUT/<name>.tif``: one uint8 band of class labels with the input's CRS, affine transform and size (a mask of
an image without a georeference is the same file without them), the classes' colours as its palette (a GIS
shows it coloured), their names in its metadata, and no data (the ignore label, 255) where the input held no
data, declared as the file's no-data value so that a GIS shows those pixels transparent. ``pixelwise predict``
chooses it instead of the PNG mask when an input is georeferenced; ``pixelwise evaluate`` reads it back like
any index mask.

The file is written band by band as the prediction streams (rasterio, the ``[geo]`` extra), in 256 × 256
tiles with deflate compression (BigTIFF where it would pass 4 GB), so neither the mask nor the image need fit
in memory; it appears whole or not at all (``AtomicFile``). No overviews are built: a pyramid's reduced
levels would be pages of their own, and the masks must stay readable as one image by tifffile
(``data.decode``); a GIS builds its own overviews on demand (``gdaladdo``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.sinks.base import AtomicFile, PredictionBand

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo

# the tile of the written masks: the predictor's default tile, and a size GDAL and every GIS read well
TILE = 256


class _GeoTiffWriter:
    def __init__(self, path: Path, info: ImageInfo, classes: ClassSpec) -> None:
        from pixelwise.data.raster_files import GDAL_OPTIONS, require_rasterio

        rasterio = require_rasterio(f"{path}: a GeoTIFF mask")
        self.width = info.width
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": info.width,
            "height": info.height,
            "count": 1,
            "dtype": "uint8",
            "nodata": classes.ignore_index,
            "tiled": True,
            "blockxsize": TILE,
            "blockysize": TILE,
            "compress": "deflate",
            "BIGTIFF": "IF_SAFER",
        }
        if info.georeference is not None:
            from affine import Affine
            from rasterio.crs import CRS

            profile["crs"] = CRS.from_user_input(info.georeference.crs)
            profile["transform"] = Affine(*info.georeference.transform)
        self.file = AtomicFile(path)
        try:
            # scoped: a GDAL environment held across calls would upset the per-thread stack of others
            with rasterio.Env(**GDAL_OPTIONS), warnings.catch_warnings():
                # a mask of an image without a georeference has none either: nothing to warn about
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.dataset = rasterio.open(self.file.temporary, "w", **profile)
            colours = {index: tuple(int(value) for value in colour) for index, colour in enumerate(classes.palette())}
            self.dataset.write_colormap(1, colours)
            self.dataset.set_band_description(1, "class")
            self.dataset.update_tags(classes=json.dumps(list(classes.names)), ignore_index=str(classes.ignore_index))
        except BaseException:
            self._close()
            self.file.discard()
            raise

    def write(self, band: PredictionBand) -> None:
        from rasterio.windows import Window

        window = Window(0, band.top, self.width, band.rows)
        self.dataset.write(band.labels.astype("uint8", copy=False), 1, window=window)

    def commit(self) -> None:
        self._close()
        self.file.commit()

    def discard(self) -> None:
        self._close()
        self.file.discard()

    def _close(self) -> None:
        dataset = getattr(self, "dataset", None)
        if dataset is not None and not dataset.closed:
            dataset.close()


class GeoTiffMaskSink:
    """Class masks as tiled GeoTIFFs with the input's georeference, ``OUT/<name>.tif``."""

    name = "geotiff"
    needs_probabilities = False
    needs_pixels = False

    def path(self, out: Path, name: str) -> Path:
        return out / f"{name}.tif"

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> _GeoTiffWriter:
        if classes is None:
            raise ValueError("a class mask needs the classes")
        return _GeoTiffWriter(path, info, classes)
