"""Helpers of the gigapixel tests: small tiled, pyramidal and slide-like TIFFs (a few hundred pixels a side)
and a numpy "network" whose logits depend on where a tile was cut: the ``pyramids`` fixture of conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from pixelwise.data.classes import ClassSpec
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec


def tissue_image(height: int, width: int, *, seed: int = 0, share: float = 0.3) -> np.ndarray:
    """(H, W, 3) uint8: white-grey glass with a pink-purple textured 'tissue' rectangle on about ``share`` of it."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(235, 4, (height, width, 3)), 0, 255).astype(np.uint8)
    side = np.sqrt(share)
    rows, columns = int(height * side), int(width * side)
    top, left = (height - rows) // 3, (width - columns) // 2
    tissue = np.stack(
        [
            rng.integers(150, 230, (rows, columns)),
            rng.integers(40, 140, (rows, columns)),
            rng.integers(120, 210, (rows, columns)),
        ],
        axis=-1,
    )
    image[top : top + rows, left : left + columns] = tissue.astype(np.uint8)
    return image


def write_pyramid(
    path: Path,
    image: np.ndarray,
    *,
    tile: int = 64,
    levels: int = 3,
    mpp: float | None = None,
    subifds: bool = False,
    compression: str = "zlib",
) -> Path:
    """A tiled TIFF of ``image`` with ``levels`` levels (each half the last), as top-level reduced pages or
    as SubIFDs (OME-TIFF style); ``mpp`` in the resolution tags."""
    photometric = "rgb" if image.ndim == 3 and image.shape[2] == 3 else "minisblack"
    resolution = {} if mpp is None else {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path) as tiff:
        for level in range(levels):
            step = 2**level
            tiff.write(
                image[::step, ::step],
                tile=(tile, tile),
                photometric=photometric,
                compression=compression,
                subfiletype=1 if level else 0,
                subifds=levels - 1 if subifds and level == 0 else None,
                metadata=None,
                **(resolution if level == 0 else {}),
            )
    return path


def write_fake_svs(path: Path, image: np.ndarray, *, mpp: float = 0.5) -> Path:
    """An Aperio-like SVS: a tiled baseline with the Aperio description (its MPP), a strip thumbnail, and a
    level reduced by 4."""
    height, width = image.shape[:2]
    description = (
        f"Aperio Image Library v10.0.50\r\n{width}x{height} [0,0 {width}x{height}] (64x64) RGB|AppMag = 20|MPP = {mpp}"
    )
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(image, tile=(64, 64), photometric="rgb", compression="zlib", description=description, metadata=None)
        tiff.write(
            image[::8, ::8], photometric="rgb", description="Aperio Image Library v10.0.50\r\nthumbnail", metadata=None
        )
        tiff.write(
            image[::4, ::4],
            tile=(64, 64),
            photometric="rgb",
            compression="zlib",
            description=description,
            metadata=None,
        )
    return path


class MixingBackend:
    """A numpy 'network': a 3 × 3 box blur of the channels mixed into K logits (position-dependent, so a
    blending error would show); counts its calls and the tiles it saw."""

    def __init__(self, channels: int, classes: int) -> None:
        self.weights = np.random.default_rng(7).normal(size=(classes, channels)).astype(np.float32)
        self.calls = 0
        self.tiles = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.tiles += len(batch)
        padded = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        height, width = batch.shape[-2:]
        blurred = sum(padded[:, :, r : r + height, c : c + width] for r in range(3) for c in range(3)) / 9
        return np.einsum("kc,nchw->nkhw", self.weights, blurred).astype(np.float32)


def mixing_predictor(channels: int = 3, classes: int = 4, **options: object) -> Predictor:
    spec = InferenceSpec(
        model="mixing",
        classes=ClassSpec.default(classes),
        mean=(0.6,) * channels,
        std=(0.2,) * channels,
        in_channels=channels,
        stride=4,
    )
    return Predictor(MixingBackend(channels, classes), spec, **options)  # type: ignore[arg-type]
