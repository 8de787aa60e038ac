"""Reading multispectral tiles against reading RGB PNGs of the same size, through pixelwise's own readers.

    .venv/bin/python bench/rasters.py [--tiles 32] [--size 512] [--rounds 3]

``--tiles`` files of ``--size``² pixels of each kind, written once into a temporary folder, then read to what the
network takes (float32 in [0, 1], (H, W, C)) in interleaved rounds; the best round of each counts:

- ``png``: RGB uint8 PNG (Pillow's default compression) through ``data.io.read_image`` (/ 255);
- ``geotiff``: 6-band uint16 GeoTIFF (deflate, 256² tiles, as GDAL tools write them) through rasterio by
  ``data.rasters.read_bands`` with a model's band ranges (what training and prediction do);
- ``geotiff-raw``: the same files uncompressed;
- ``tiff``: 6-band uint16 TIFF without a georeference (tifffile, deflate) through the same function;
- ``window``: 256² windows of one large 6-band GeoTIFF (deflate, tiled) through ``RasterSource.read``, as
  ``predict`` reads a scene larger than the memory; as many pixels as the tiles.

Reported per kind: megapixels per second, MB of decoded values per second, and the time per pixel against the
PNG's (a 6-band 16-bit pixel holds 4× the bytes of an RGB 8-bit one).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pixelwise.data.bands import BandRanges, InputBands

BANDS = 6


def write_files(folder: Path, tiles: int, size: int) -> dict[str, list[Path]]:
    import rasterio
    import tifffile
    from affine import Affine
    from PIL import Image

    rng = np.random.default_rng(0)
    files: dict[str, list[Path]] = {"png": [], "geotiff": [], "geotiff-raw": [], "tiff": []}
    rows, cols = np.mgrid[:size, :size]
    for index in range(tiles):
        # smooth fields plus noise: compressible as real scenes are, not as constant or white noise
        base = np.sin(rows / (17 + index)) + np.cos(cols / (23 + index))
        bands = np.stack(
            [(2000 + 800 * base * (band + 1) / BANDS + rng.normal(0, 60, base.shape)) for band in range(BANDS)]
        )
        stored = bands.clip(0, 65535).astype(np.uint16)
        rgb = np.moveaxis((stored[:3] >> 4).clip(0, 255).astype(np.uint8), 0, -1)
        files["png"].append(folder / f"t{index}.png")
        Image.fromarray(rgb).save(files["png"][-1])
        for kind, compress in (("geotiff", "deflate"), ("geotiff-raw", None)):
            path = folder / f"t{index}-{kind}.tif"
            profile = {"driver": "GTiff", "width": size, "height": size, "count": BANDS, "dtype": "uint16"}
            profile.update(crs="EPSG:32633", transform=Affine(10, 0, 300000 + 10 * size * index, 0, -10, 5e6))
            profile.update(tiled=True, blockxsize=256, blockysize=256)
            if compress:
                profile["compress"] = compress
            with rasterio.open(path, "w", **profile) as raster:
                raster.write(stored)
            files[kind].append(path)
        files["tiff"].append(folder / f"t{index}-plain.tif")
        tifffile.imwrite(
            files["tiff"][-1],
            np.moveaxis(stored, 0, -1),
            photometric="minisblack",
            planarconfig="contig",
            compression="zlib",
        )
    return files


def write_scene(folder: Path, side: int) -> Path:
    import rasterio
    from affine import Affine

    rows, cols = np.mgrid[:side, :side]
    base = np.sin(rows / 31) + np.cos(cols / 37)
    stored = np.stack([2000 + 700 * base * (band + 1) / BANDS for band in range(BANDS)]).astype(np.uint16)
    path = folder / "scene.tif"
    profile = {"driver": "GTiff", "width": side, "height": side, "count": BANDS, "dtype": "uint16"}
    profile.update(crs="EPSG:32633", transform=Affine(10, 0, 300000, 0, -10, 5e6), compress="deflate")
    profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as raster:
        raster.write(stored)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    from pixelwise.data.io import read_image
    from pixelwise.data.rasters import RasterSource, read_bands

    rule = InputBands((), None, BandRanges((1000.0,) * BANDS, (3500.0,) * BANDS))
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = write_files(folder, options.tiles, options.size)
        side = int(np.sqrt(options.tiles)) * options.size
        scene = write_scene(folder, side)
        window = 256
        readers: dict[str, Callable[[], int]] = {
            "png": lambda: sum(read_image(path).size for path in files["png"]),
            "geotiff": lambda: sum(read_bands(path, input_bands=rule)[0].size for path in files["geotiff"]),
            "geotiff-raw": lambda: sum(read_bands(path, input_bands=rule)[0].size for path in files["geotiff-raw"]),
            "tiff": lambda: sum(read_bands(path, input_bands=rule)[0].size for path in files["tiff"]),
        }

        def windows() -> int:
            total = 0
            with RasterSource(scene, input_bands=rule) as source:
                for top in range(0, side, window):
                    for left in range(0, side, window):
                        total += source.read(top, left, window, window).size
            return total

        readers["window"] = windows
        pixels = {kind: options.tiles * options.size**2 for kind in readers} | {"window": side * side}
        values_bytes = {
            "png": 3,
            "geotiff": 2 * BANDS,
            "geotiff-raw": 2 * BANDS,
            "tiff": 2 * BANDS,
            "window": 2 * BANDS,
        }
        best = {kind: float("inf") for kind in readers}
        for _ in range(options.rounds):
            for kind, read in readers.items():
                started = time.perf_counter()
                read()
                best[kind] = min(best[kind], time.perf_counter() - started)
        load = os.getloadavg()
        print(f"{options.tiles} tiles of {options.size}², best of {options.rounds} rounds; load average {load[0]:.1f}")
        png_per_pixel = best["png"] / pixels["png"]
        print(f"{'kind':12} {'s':>7} {'Mpx/s':>8} {'MB/s':>8} {'per pixel vs png':>17}")
        for kind, seconds in best.items():
            megapixels = pixels[kind] / 1e6
            rate = megapixels / seconds
            print(
                f"{kind:12} {seconds:7.3f} {rate:8.1f} {rate * values_bytes[kind]:8.1f} "
                f"{seconds / pixels[kind] / png_per_pixel:16.2f}×"
            )


if __name__ == "__main__":
    main()
