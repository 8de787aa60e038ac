"""Small multispectral and georeferenced data for the tests (built here, never downloaded)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CRS = "EPSG:32633"  # UTM 33N
PIXEL = 10.0  # metres, as Sentinel-2's 10 m bands
NAMES = ("B2", "B3", "B4", "B8", "B11", "B12")


def transform(index: int = 0) -> tuple[float, ...]:
    """The affine transform (rasterio's order) of scene ``index``: 10 m pixels, scenes side by side."""
    return (PIXEL, 0.0, 300_000.0 + 1_000.0 * index, 0.0, -PIXEL, 5_000_000.0)


def write_raster(
    path: Path,
    bands: np.ndarray,
    *,
    crs: str | None = CRS,
    affine: Sequence[float] | None = None,
    nodata: float | None = None,
    names: Sequence[str] | None = None,
    tile: int | None = None,
) -> Path:
    """A GeoTIFF of ``bands`` (C, H, W) through rasterio; without ``crs`` a plain (not georeferenced) one."""
    import rasterio
    from affine import Affine

    count, height, width = bands.shape
    profile: dict[str, object] = {"driver": "GTiff", "width": width, "height": height, "count": count}
    profile["dtype"] = bands.dtype.name
    if crs is not None:
        profile.update(crs=crs, transform=Affine(*(affine or transform())))
    if nodata is not None:
        profile["nodata"] = nodata
    if tile is not None:
        profile.update(tiled=True, blockxsize=tile, blockysize=tile)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # the plain TIFFs asked for
        with rasterio.open(path, "w", **profile) as raster:
            raster.write(bands)
            if names is not None:
                raster.descriptions = tuple(names)
    return path


def signal_scene(rng: np.random.Generator, *, height: int = 40, width: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(6, H, W) uint16 reflectance-like bands and the (H, W) mask they show: only band 4 (NIR) tells the
    objects (bright rectangles) from the background; bands 1-3 and 5-6 are noise of the same range for both.
    The top four rows hold no data (0 in every band)."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(3):
        top, left = rng.integers(4, height - 10), rng.integers(0, width - 12)
        mask[top : top + 10, left : left + 12] = 1
    bands = rng.integers(300, 4000, (6, height, width)).astype(np.uint16)
    bands[3] = np.where(mask == 1, 6000, 1500) + rng.integers(0, 800, (height, width))
    bands[:, :4] = 0
    return bands, mask


def write_signal_dataset(root: Path, count: int = 10, *, seed: int = 0, georeferenced: bool = True) -> Path:
    """A flat dataset folder of ``count`` 6-band 16-bit GeoTIFF scenes (``signal_scene``, no data 0, band names
    ``NAMES``) with PNG masks; the masks of the no-data rows say background (their truth is unknown)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index in range(count):
        bands, mask = signal_scene(rng)
        write_raster(
            root / "images" / f"scene_{index:02d}.tif",
            bands,
            crs=CRS if georeferenced else None,
            affine=transform(index),
            nodata=0,
            names=NAMES,
        )
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(root / "masks" / f"scene_{index:02d}.png")
    return root
