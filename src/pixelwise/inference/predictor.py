"""Predict class probabilities for images of any size: overlapping tiles, Gaussian-blended logits.

Memory is bounded by one batch of tiles plus the output canvas (K × H × W float32 logit sums and an
H × W float32 weight sum): the image is never passed whole through the network, so a 10,000 × 10,000
photo costs what its output costs. Logits (not probabilities) are blended, as nnU-Net does: averaging
scores before the softmax keeps confident tiles confident where a tile edge cuts an object.

The network sits behind a ``Backend`` (``inference.backends``), a callable from a (N, C, h, w) float32
numpy batch to (N, K, h, w) float32 logits, described by an ``InferenceSpec``. Every window is padded to a
multiple of the network's stride here, outside the network, so an exported network without padding of its
own (ONNX) takes any image. The loop is written once over ``inference.arrays``: numpy on the host, or, for
a ``TorchBackend``, torch on the model's device, so that a GPU blends its own tiles.
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
from pixelwise.inference.arrays import Array, Arrays, NumpyArrays, padded_forward
from pixelwise.inference.backends import ArrayBackend, Backend, load_backend
from pixelwise.inference.spec import InferenceSpec
from pixelwise.inference.tiling import gaussian_importance_map, tile_grid

if TYPE_CHECKING:
    import torch

    from pixelwise.data.classes import ClassSpec


class Predictor:
    """Any-size image -> per-class probabilities, by tiles blended with a Gaussian importance map.

    ``backend`` runs the network (``TorchBackend(model)``, or any callable from a numpy batch to numpy
    logits); ``spec`` says what it expects and returns: classes, per-channel standardisation of [0, 1]
    inputs, input channels, the training tile size, the network's stride. ``tile_size``: tiles are at most
    this size (default: the spec's; an image smaller than a tile is one window of its own size; every
    window is padded to a multiple of ``spec.stride``, so a tile that is one avoids the padding). ``overlap`` in [0, 1): fraction shared by neighbouring tiles. ``tta``: also predict
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
        backend: str | None = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
    ) -> Predictor:
        """A predictor for a trained model file: a checkpoint of ``pixelwise train`` (``.pt`` or its run
        folder) or an ``.onnx`` file of ``pixelwise export``.

        The network, classes, normalisation and input channels come from the file; ``tile_size`` defaults
        to the one it was trained with. ``backend`` (None: the file's own runtime; ``torch``, ``onnx``,
        ``auto``: the faster here), ``device``, ``precision`` (``auto``, ``fp32``, ``fp16``, ``bf16``) and
        ``threads``: see ``load_backend``. A missing, corrupt or foreign file is a PixelwiseError naming it.
        """
        runner, spec = load_backend(path, backend=backend, device=device, precision=precision, threads=threads)
        return cls(runner, spec, tile_size=tile_size, overlap=overlap, batch_size=batch_size, tta=tta)

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
        arrays, summed, weight = self._accumulate(image, progress)
        summed /= weight
        arrays.softmax_(summed)
        return arrays.to_host(summed)

    def predict_labels(self, image: np.ndarray, *, progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Most probable class per pixel, (H, W) uint8."""
        if self.num_classes > 256:
            raise PixelwiseError(f"{self.num_classes} classes do not fit uint8 labels; use predict() and argmax")
        arrays, summed, _ = self._accumulate(image, progress)
        # every class of a pixel is divided by the same positive weight: the argmax needs no division
        return arrays.labels(summed)

    def predict_logits(self, image: np.ndarray, *, progress: Callable[[int], Any] | None = None) -> np.ndarray:
        """Blended logits (K, H, W) float32: the Gaussian-weighted average over the tiles covering each pixel."""
        arrays, summed, weight = self._accumulate(image, progress)
        summed /= weight
        return arrays.to_host(summed)

    def _accumulate(self, image: np.ndarray, progress: Callable[[int], Any] | None) -> tuple[Arrays, Array, Array]:
        """Where the arrays live, the (K, H, W) sum of Gaussian-weighted tile logits and the (H, W) sum of
        the weights, both there."""
        pixels, scale = self._check_image(image)
        height, width = pixels.shape[:2]
        arrays = self._arrays(pixels)
        # every window of an image has one shape: the tile, or the image where it is smaller
        tile_height, tile_width = min(self.tile_size, height), min(self.tile_size, width)
        positions = tile_grid(height, width, self.tile_size, self.overlap)
        source = arrays.image(pixels)
        mean, std = arrays.constant(self.mean[:, None, None]), arrays.constant(self.std[:, None, None])
        importance = arrays.constant(gaussian_importance_map(tile_height, tile_width))
        summed = arrays.zeros((self.num_classes, height, width))
        weight = arrays.zeros((height, width))
        batch = arrays.zeros((min(self.batch_size, len(positions)), self.in_channels, tile_height, tile_width))
        for first in range(0, len(positions), self.batch_size):
            chunk = positions[first : first + self.batch_size]
            for index, (top, left) in enumerate(chunk):
                window = source[top : top + tile_height, left : left + tile_width]
                arrays.standardize(window, scale, mean, std, out=batch[index])
            logits = self._run(arrays, batch[: len(chunk)])
            expected = (len(chunk), self.num_classes, tile_height, tile_width)
            if tuple(logits.shape) != expected:
                raise PixelwiseError(
                    f"the model gave logits of shape {tuple(logits.shape)} for a batch needing {expected}; "
                    f"the model and the class list ({self.num_classes} classes) do not belong together"
                )
            for index, (top, left) in enumerate(chunk):
                logits[index] *= importance
                summed[:, top : top + tile_height, left : left + tile_width] += logits[index]
                weight[top : top + tile_height, left : left + tile_width] += importance
            if progress is not None:
                progress(len(chunk))
        return arrays, summed, weight

    def _arrays(self, pixels: np.ndarray) -> Arrays:
        """The backend's own arrays (a torch device) when it offers them and the work fits, else numpy."""
        if isinstance(self.backend, ArrayBackend):
            height, width, channels = pixels.shape
            # the canvas, its weights and the image, all float32 at most
            needed = 4 * height * width * (self.num_classes + 1 + channels)
            arrays = self.backend.arrays(needed)
            if arrays is not None:
                return arrays
        return NumpyArrays(self.backend)

    def _run(self, arrays: Arrays, batch: Array) -> Array:
        """Logits for a batch of windows (padded to the stride outside the network), averaged over the four
        flips when TTA is on."""
        logits = padded_forward(arrays, batch, self.spec.stride)
        if not self.tta:
            return logits
        for axes in ((-1,), (-2,), (-2, -1)):
            logits += arrays.flip(padded_forward(arrays, arrays.flip(batch, axes), self.spec.stride), axes)
        logits /= 4
        return logits

    def _check_image(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image as (H, W, C) with the model's channels, and the factor that takes its values to [0, 1].

        Values are converted per window, so a huge image is never copied whole; only an image whose channels
        differ from the model's is converted once (to float32, with a notice).
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
        if channels == self.in_channels:
            return pixels, scale
        if channels == 1:
            warnings.warn(
                f"the image is grey and the model expects {self.in_channels} channels: repeating the grey channel",
                stacklevel=3,
            )
        elif channels == 3 and self.in_channels == 1:
            warnings.warn("the image is RGB and the model expects grey: using its luminance", stacklevel=3)
        else:
            raise PixelwiseError(
                f"the image has {channels} channels but the model was trained on {self.in_channels}; "
                "give images like the training images"
            )
        as_float = pixels.astype(np.float32)
        if scale != 1.0:
            as_float *= np.float32(scale)
        return conform_channels(as_float, self.in_channels), 1.0
