"""What an image is, without its pixels: ``ImageInfo`` and ``Georeference``, the records every image reader
fills and every sink reads (``data.sources`` re-exports them). A module of its own that imports nothing of
pixelwise, so that the readers (``data.rasters``) and the registry that names them (``data.sources``) both
import it without importing each other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Affine = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Georeference:
    """Where an image lies on the map: ``crs`` (WKT or ``EPSG:N``) and the affine ``transform`` from pixel
    (column, row) to map coordinates, in rasterio's order (a, b, c, d, e, f): x = a·col + b·row + c,
    y = d·col + e·row + f."""

    crs: str
    transform: Affine


@dataclass(frozen=True)
class ImageInfo:
    """What is known of an image without reading its pixels.

    ``height``, ``width``: of the full-resolution image (or of the level read, for a pyramid). ``bands``:
    channels. ``dtype``: the stored type's name (``uint8``, ``uint16``, ``float32`` ...). ``levels``: (height,
    width) of every pyramid level, the full resolution first (one entry for an image without a pyramid).
    ``mpp``: microns per pixel, where the file says. ``georeference``: where the file says. ``band_names``:
    where the file names its bands. ``nodata``: the stored value that means "no data", where the file says.
    """

    height: int
    width: int
    bands: int
    dtype: str
    levels: tuple[tuple[int, int], ...] = ()
    mpp: float | None = None
    georeference: Georeference | None = None
    band_names: tuple[str, ...] = field(default=())
    nodata: float | None = None

    def __post_init__(self) -> None:
        if not self.levels:
            object.__setattr__(self, "levels", ((self.height, self.width),))

    @property
    def pixels(self) -> int:
        return self.height * self.width
