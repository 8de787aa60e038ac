"""Predict class probabilities for images of any size: overlapping tiles, Gaussian-blended logits.

Memory is bounded by one batch of tiles plus the output canvas (K × H × W float32 logit sums and an
H × W float32 weight sum): the image is never passed whole through the network, so a 10,000 × 10,000
photo costs what its output costs. Logits (not probabilities) are blended, as nnU-Net does: averaging
scores before the softmax keeps confident tiles confident where a tile edge cuts an object.

The tiler is numpy only: the network sits behind a ``Backend`` (``inference.backends``), a callable from a
(N, C, h, w) float32 numpy batch to (N, K, h, w) float32 logits, described by an ``InferenceSpec``.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelwise.data.channels import conform_channels
from pixelwise.errors import PixelwiseError
from pixelwise.inference.backends import Backend, load_backend
from pixelwise.inference.spec import InferenceSpec
from pixelwise.inference.tiling import gaussian_importance_map, tile_grid

if TYPE_CHECKING:
    import torch

    from pixelwise.data.classes import ClassSpec

# the softmax runs over row bands of about this many values, so it needs no second full-size canvas
_SOFTMAX_BLOCK = 1 << 22


class Predictor:
    """Any-size image -> per-class probabilities, by tiles blended with a Gaussian importance map.

    ``backend`` runs the network (``TorchBackend(model)``, or any callable from a numpy batch to numpy
    logits); ``spec`` says what it expects and returns: classes, per-channel standardisation of [0, 1]
    inputs, input channels, the training tile size. ``tile_size``: tiles are at most this size (default:
    the spec's; smaller images use one tile of their own size; a multiple of ``spec.stride`` avoids padding
    inside the model). ``overlap`` in [0, 1): fraction shared by neighbouring tiles. ``tta``: also predict
    the horizontally, vertically and doubly flipped tiles and average the logits (4× the time; exactly
    flip-equivariant).

    >>> from pixelwise.data.classes import ClassSpec
    >>> def bright(batch):  # a network in numpy: class 1 where the standardised pixel is positive
    ...     return np.concatenate([-batch, batch], axis=1)
    >>> spec = InferenceSpec(model="bright", classes=ClassSpec.default(2), mean=(0.5,), std=(0.25,), in_channels=1)
    >>> Predictor(bright, spec).predict_labels(np.array([[0.1, 0.4, 0.6, 0.9]])).tolist()
    [[0, 0, 1, 1]]
    """

    def __init__(
        self,
        backend: Backend,
        spec: InferenceSpec,
        *,
        tile_size: int | None = None,
        overlap: float = 0.5,
        batch_size: int = 4,
        tta: bool = False,
    ) -> None:
        tile_size = spec.tile_size if tile_size is None else tile_size
        if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
            raise PixelwiseError(f"tile size must be a positive integer, got {tile_size!r}; e.g. --tile 256")
        if not 0.0 <= float(overlap) < 1.0:
            raise PixelwiseError(f"overlap must be at least 0 and below 1, got {overlap!r}; e.g. --overlap 0.5")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PixelwiseError(f"batch size must be a positive integer, got {batch_size!r}; e.g. --batch-size 4")
        # a torch module takes tensors, not numpy batches: say how to wrap it (importing nothing)
        torch_module = sys.modules.get("torch")
        if torch_module is not None and isinstance(backend, torch_module.nn.Module):
            raise PixelwiseError("the backend is a torch module; wrap it: Predictor(TorchBackend(model), spec)")
        self.backend = backend
        self.spec = spec
        self.mean = np.asarray(spec.mean, dtype=np.float32)
        self.std = np.asarray(spec.std, dtype=np.float32)
        self.tile_size = tile_size
        self.overlap = float(overlap)
        self.batch_size = batch_size
        self.tta = tta

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        tile_size: int | None = None,
        overlap: float = 0.5,
        batch_size: int = 4,
        tta: bool = False,
        device: str | torch.device = "cpu",
    ) -> Predictor:
        """A predictor for a trained model file: a checkpoint of ``pixelwise train`` (``.pt`` or its run folder).

        The network, classes, normalisation and input channels come from the file (``load_backend``);
        ``tile_size`` defaults to the one it was trained with. A missing, corrupt or foreign file is a
        PixelwiseError naming it.
        """
        backend, spec = load_backend(path, device=device)
        return cls(backend, spec, tile_size=tile_size, overlap=overlap, batch_size=batch_size, tta=tta)

    @property
    def classes(self) -> ClassSpec:
        return self.spec.classes

    @property
    def in_channels(self) -> int:
        return self.spec.in_channels

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def predict(self, image: np.ndarray, *, progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Class probabilities (K, H, W) float32 for an (H, W) or (H, W, C) image in [0, 1] (or uint8).

        ``progress`` is called with the number of tiles done after each batch (e.g. ``tqdm.update``).
        """
        logits = self.predict_logits(image, progress=progress)
        _softmax_in_place(logits)
        return logits

    def predict_labels(self, image: np.ndarray, *, progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Most probable class per pixel, (H, W) uint8."""
        if self.num_classes > 256:
            raise PixelwiseError(f"{self.num_classes} classes do not fit uint8 labels; use predict() and argmax")
        summed, _ = self._accumulate(image, progress)
        # every class of a pixel is divided by the same positive weight: the argmax needs no division
        return np.argmax(summed, axis=0).astype(np.uint8)

    def predict_logits(self, image: np.ndarray, *, progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Blended logits (K, H, W) float32: the Gaussian-weighted average over the tiles covering each pixel."""
        summed, weight = self._accumulate(image, progress)
        summed /= weight
        return summed

    def _accumulate(self, image: np.ndarray, progress: Callable[[int], Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """(K, H, W) sum of Gaussian-weighted tile logits and the (H, W) sum of the weights."""
        pixels, convert = self._check_image(image)
        height, width = pixels.shape[:2]
        tile_height, tile_width = min(self.tile_size, height), min(self.tile_size, width)
        positions = tile_grid(height, width, self.tile_size, self.overlap)
        importance = gaussian_importance_map(tile_height, tile_width)
        summed = np.zeros((self.num_classes, height, width), dtype=np.float32)
        weight = np.zeros((height, width), dtype=np.float32)
        batch = np.empty((min(self.batch_size, len(positions)), self.in_channels, tile_height, tile_width), np.float32)
        for first in range(0, len(positions), self.batch_size):
            chunk = positions[first : first + self.batch_size]
            for index, (top, left) in enumerate(chunk):
                self._fill(batch[index], convert(pixels[top : top + tile_height, left : left + tile_width]))
            logits = self._run(batch[: len(chunk)])
            expected = (len(chunk), self.num_classes, tile_height, tile_width)
            if logits.shape != expected:
                raise PixelwiseError(
                    f"the model gave logits of shape {logits.shape} for a batch needing {expected}; "
                    f"the model and the class list ({self.num_classes} classes) do not belong together"
                )
            for index, (top, left) in enumerate(chunk):
                np.multiply(logits[index], importance, out=logits[index])
                summed[:, top : top + tile_height, left : left + tile_width] += logits[index]
                weight[top : top + tile_height, left : left + tile_width] += importance
            if progress is not None:
                progress(len(chunk))
        return summed, weight

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Backend logits for a batch, averaged over the four flips when TTA is on."""
        logits = np.asarray(self.backend(batch), dtype=np.float32)
        if not self.tta:
            return logits
        logits = logits.copy()
        for axes in ((-1,), (-2,), (-2, -1)):
            flipped = np.ascontiguousarray(np.flip(batch, axis=axes))
            logits += np.flip(np.asarray(self.backend(flipped), dtype=np.float32), axis=axes)
        logits /= 4
        return logits

    def _fill(self, out: np.ndarray, tile: np.ndarray) -> None:
        """Write one (h, w, C) float32 tile, standardised, into ``out`` (C, h, w)."""
        np.subtract(tile.transpose(2, 0, 1), self.mean[:, None, None], out=out)
        out /= self.std[:, None, None]

    def _check_image(self, image: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """The image as (H, W, C) and a per-tile conversion to float32 [0, 1] with the model's channels.

        Conversions happen per tile, so a huge image is never copied whole.
        """
        pixels = np.asarray(image)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.ndim != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
            raise PixelwiseError(f"expected an (H, W) or (H, W, C) image, got shape {pixels.shape}")
        if pixels.dtype == np.uint8:
            scale = 1 / 255
        elif np.issubdtype(pixels.dtype, np.floating) or pixels.dtype == np.bool_:
            scale = 1.0
        else:
            raise PixelwiseError(
                f"expected a float image in [0, 1] (or uint8), got {pixels.dtype}; "
                "read files with pixelwise.data.io.read_image, which scales any type"
            )
        channels = pixels.shape[2]

        def to_float(tile: np.ndarray) -> np.ndarray:
            converted = tile.astype(np.float32)
            return converted * np.float32(scale) if scale != 1.0 else converted

        if channels == self.in_channels:
            return pixels, to_float
        if channels == 1:
            warnings.warn(
                f"the image is grey and the model expects {self.in_channels} channels: repeating the grey channel",
                stacklevel=3,
            )
            return pixels, lambda tile: conform_channels(to_float(tile), self.in_channels)
        if channels == 3 and self.in_channels == 1:
            warnings.warn("the image is RGB and the model expects grey: using its luminance", stacklevel=3)
            return pixels, lambda tile: conform_channels(to_float(tile), 1)
        raise PixelwiseError(
            f"the image has {channels} channels but the model was trained on {self.in_channels}; "
            "give images like the training images"
        )


def _softmax_in_place(logits: np.ndarray) -> None:
    """Softmax over axis 0 of (K, H, W) float32 logits, in place, a band of rows at a time."""
    classes, height, width = logits.shape
    rows = max(1, _SOFTMAX_BLOCK // max(1, classes * width))
    for start in range(0, height, rows):
        band = logits[:, start : start + rows]
        band -= band.max(axis=0, keepdims=True)
        np.exp(band, out=band)
        band /= band.sum(axis=0, keepdims=True)
