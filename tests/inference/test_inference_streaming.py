"""The predictor's row bands against a whole-canvas blend: the same values bit for bit, in bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelwise.data.classes import ClassSpec
from pixelwise.data.sources import ArraySource, ImageInfo
from pixelwise.inference.arrays import padded_forward
from pixelwise.inference.backends import TorchBackend
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.inference.tiling import gaussian_importance_map, tile_grid
from pixelwise.models.registry import create_model


class MixingBackend:
    """A position-dependent numpy 'network': a 3 × 3 box blur of the channels mixed into K logits, so that
    every tile's logits depend on where the tile was cut (blending errors would show)."""

    def __init__(self, channels: int, classes: int) -> None:
        self.weights = np.random.default_rng(7).normal(size=(classes, channels)).astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        padded = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        height, width = batch.shape[-2:]
        blurred = sum(padded[:, :, r : r + height, c : c + width] for r in range(3) for c in range(3)) / 9
        return np.einsum("kc,nchw->nkhw", self.weights, blurred).astype(np.float32)


def whole_canvas_logits(predictor: Predictor, image: np.ndarray) -> np.ndarray:
    """The reference: the (K, H, W) canvas of every Gaussian-weighted tile, accumulated in grid order."""
    height, width = image.shape[:2]
    tile_height, tile_width = min(predictor.tile_size, height), min(predictor.tile_size, width)
    importance = gaussian_importance_map(tile_height, tile_width)
    summed = np.zeros((predictor.num_classes, height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    positions = tile_grid(height, width, predictor.tile_size, predictor.overlap)
    scale = np.float32(1 / 255) if image.dtype == np.uint8 else None
    for first in range(0, len(positions), predictor.batch_size):
        chunk = positions[first : first + predictor.batch_size]
        windows = []
        for top, left in chunk:
            window = image[top : top + tile_height, left : left + tile_width].astype(np.float32)
            if scale is not None:
                window *= scale
            windows.append((window.transpose(2, 0, 1) - predictor.mean[:, None, None]) / predictor.std[:, None, None])
        from pixelwise.inference.arrays import NumpyArrays

        logits = padded_forward(NumpyArrays(predictor.backend), np.stack(windows), predictor.spec.stride)
        for index, (top, left) in enumerate(chunk):
            logits[index] *= importance
            summed[:, top : top + tile_height, left : left + tile_width] += logits[index]
            weight[top : top + tile_height, left : left + tile_width] += importance
    return summed / weight


def mixing_predictor(channels: int = 3, classes: int = 4, **options: object) -> Predictor:
    spec = InferenceSpec(
        model="mixing",
        classes=ClassSpec.default(classes),
        mean=(0.4,) * channels,
        std=(0.3,) * channels,
        in_channels=channels,
        stride=4,
    )
    return Predictor(MixingBackend(channels, classes), spec, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "tile", "overlap", "batch"),
    [((97, 61, 3), 32, 0.5, 4), ((200, 33, 3), 48, 0.25, 3), ((31, 140, 3), 64, 0.75, 5), ((64, 64, 3), 32, 0.0, 2)],
)
def test_bands_equal_the_whole_canvas_bit_for_bit(
    shape: tuple[int, int, int], tile: int, overlap: float, batch: int
) -> None:
    predictor = mixing_predictor(tile_size=tile, overlap=overlap, batch_size=batch)
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    reference = whole_canvas_logits(predictor, image)
    np.testing.assert_array_equal(predictor.predict_logits(image), reference)
    np.testing.assert_array_equal(predictor.predict_labels(image), reference.argmax(axis=0))
    bands = list(predictor.stream(image, output="logits"))
    # the bands tile the image top to bottom, none taller than a tile
    assert [band.top for band in bands] == [0, *np.cumsum([band.rows for band in bands])[:-1].tolist()]
    assert sum(band.rows for band in bands) == shape[0] and max(band.rows for band in bands) <= tile


def test_a_run_started_at_a_band_gives_exactly_the_rows_of_a_whole_run() -> None:
    predictor = mixing_predictor(tile_size=32, overlap=0.5, batch_size=3)
    image = np.random.default_rng(1).random((150, 70, 3), dtype=np.float32)
    whole = predictor.predict_logits(image)
    for start in (0, 16, 37, 149):
        bands = list(predictor.stream(image, output="logits", start_row=start))
        assert bands[0].top == start
        resumed = np.concatenate([band.values for band in bands], axis=1)
        np.testing.assert_array_equal(resumed, whole[:, start:])


def test_the_band_buffers_hold_one_tile_row_not_the_image() -> None:
    """Only a band of the image is ever read, and the network sees one batch at a time."""

    class CountingSource(ArraySource):
        def __init__(self, image: np.ndarray) -> None:
            super().__init__(image)
            self.reads: list[tuple[int, int, int, int]] = []

        def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
            self.reads.append((top, left, height, width))
            return super().read(top, left, height, width)

    predictor = mixing_predictor(tile_size=32, overlap=0.5)
    image = np.random.default_rng(2).random((300, 50, 3), dtype=np.float32)
    source = CountingSource(image)
    np.testing.assert_array_equal(predictor.predict_labels(source), predictor.predict_labels(image))
    assert {height for _, _, height, _ in source.reads} == {32}
    assert len(source.reads) == len({top for top, _, _, _ in source.reads})  # each band read once


def test_a_source_with_its_own_info_is_read_through_its_regions() -> None:
    """A lazy source (a tiled file) need not hold the image: only ``info`` and ``read`` are used."""

    class Lazy:
        name = "lazy"
        info = ImageInfo(90, 40, 3, "uint8")

        def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
            rows, columns = np.mgrid[top : top + height, left : left + width]
            return np.stack([(rows * 7 + columns * 3 + band) % 256 for band in range(3)], axis=-1).astype(np.uint8)

        def close(self) -> None:
            pass

    predictor = mixing_predictor(tile_size=32)
    whole = Lazy().read(0, 0, 90, 40)
    np.testing.assert_array_equal(predictor.predict_logits(Lazy()), predictor.predict_logits(whole))


def test_torch_bands_on_the_device_equal_the_host_canvas(device: str) -> None:
    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=3, in_channels=3, width=4, depth=2)
    spec = InferenceSpec(
        model="unet-small", classes=ClassSpec.default(3), mean=(0.5,) * 3, std=(0.25,) * 3, in_channels=3, stride=4
    )
    image = np.random.default_rng(3).integers(0, 256, (90, 47, 3)).astype(np.uint8)
    on_device = Predictor(TorchBackend(model, device=device, blend="device"), spec, tile_size=30, batch_size=3)
    reference = whole_canvas_logits(
        Predictor(TorchBackend(model, device=device, blend="host"), spec, tile_size=30, batch_size=3), image
    )
    np.testing.assert_allclose(on_device.predict_logits(image), reference, rtol=1e-5, atol=1e-6)
