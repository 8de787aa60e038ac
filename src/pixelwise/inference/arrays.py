"""Where the tiler keeps its arrays: on the host in numpy, or on the device a PyTorch network runs on.

The predictor's loop is written once; the few operations that differ between numpy and torch live here,
behind ``Arrays``: put the image where the network runs, cut and standardise a window into a batch, pad,
flip, run the network, and turn the blended canvas into labels, logits or probabilities back on the host.
Everything else the loop does (slicing, ``+=``, ``*=``, ``/=``) means the same for both.

``NumpyArrays`` runs any numpy ``Backend`` (ONNX Runtime, a plain function) and keeps tiles and canvas on
the host. ``TorchArrays`` (built by ``TorchBackend.arrays``) keeps the image, the tiles and the canvas on
the model's device, so on a GPU nothing comes back to the host until the result does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pixelwise.padding import PadMode, pad_amounts, pad_mode

if TYPE_CHECKING:
    import torch

# an array of the namespace at hand: np.ndarray for NumpyArrays, torch.Tensor for TorchArrays
Array = Any
# the softmax runs over row bands of about this many values, so it needs no second full-size canvas
SOFTMAX_BLOCK = 1 << 22


class Arrays(Protocol):
    """The operations the tiler's loop needs from an array library, and the network's forward pass in it."""

    def image(self, pixels: np.ndarray) -> Array:
        """The (H, W, C) image where the windows are cut from (numpy: the same array, never copied)."""
        ...

    def zeros(self, shape: tuple[int, ...]) -> Array: ...

    def constant(self, values: np.ndarray) -> Array:
        """A small float32 host array (the importance map, mean, std) in this namespace."""
        ...

    def standardize(self, window: Array, scale: float, mean: Array, std: Array, out: Array) -> None:
        """``out`` (C, h, w) float32 = (window (h, w, C) as float32 · scale - mean) / std."""
        ...

    def pad(self, batch: Array, rows: tuple[int, int], columns: tuple[int, int], mode: PadMode) -> Array: ...

    def flip(self, batch: Array, axes: tuple[int, ...]) -> Array:
        """A contiguous copy of ``batch`` reversed along ``axes``."""
        ...

    def forward(self, batch: Array) -> Array:
        """(N, C, h, w) float32 -> (N, K, h, w) float32 logits, writable."""
        ...

    def labels(self, summed: Array) -> np.ndarray:
        """The (H, W) uint8 argmax over the classes of a (K, H, W) canvas, on the host."""
        ...

    def softmax_(self, logits: Array) -> None:
        """Softmax over the classes of (K, H, W) logits, in place."""
        ...

    def to_host(self, array: Array) -> np.ndarray: ...

    def shift_rows(self, array: Array, rows: int) -> None:
        """Move ``array``'s rows (second-to-last axis) up by ``rows`` in place, zeros coming in below: the
        band buffer moving down the image."""
        ...


def padded_forward(arrays: Arrays, batch: Array, stride: int) -> Array:
    """Logits (N, K, h, w) for a batch (N, C, h, w) of any size: padded to a multiple of ``stride``, run,
    cropped back.

    The pad is the one ``SegmentationNetwork`` applies inside PyTorch (``pixelwise.padding``), here outside
    the network: an exported network (ONNX) has no padding of its own, and a PyTorch one then has none to do.
    """
    height, width = batch.shape[-2:]
    rows, columns = pad_amounts(height, multiple=stride), pad_amounts(width, multiple=stride)
    if rows == columns == (0, 0):
        return arrays.forward(batch)
    logits = arrays.forward(arrays.pad(batch, rows, columns, pad_mode(height, width, rows, columns)))
    return logits[..., rows[0] : rows[0] + height, columns[0] : columns[0] + width]


class NumpyArrays:
    """Host arrays; ``backend`` maps a numpy batch to numpy logits (ONNX Runtime, a function ...)."""

    def __init__(self, backend: Callable[[np.ndarray], np.ndarray]) -> None:
        self.backend = backend

    def image(self, pixels: np.ndarray) -> np.ndarray:
        return pixels

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def constant(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, np.float32)

    def standardize(self, window: np.ndarray, scale: float, mean: np.ndarray, std: np.ndarray, out: np.ndarray) -> None:
        pixels = window.astype(np.float32)
        if scale != 1.0:
            pixels *= np.float32(scale)
        np.subtract(pixels.transpose(2, 0, 1), mean, out=out)
        out /= std

    def pad(self, batch: np.ndarray, rows: tuple[int, int], columns: tuple[int, int], mode: PadMode) -> np.ndarray:
        # numpy's reflect is torch's reflect (the border pixel is not repeated); its edge is torch's replicate
        return np.pad(batch, ((0, 0), (0, 0), rows, columns), mode="reflect" if mode == "reflect" else "edge")

    def flip(self, batch: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return np.ascontiguousarray(np.flip(batch, axis=axes))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        logits = np.asarray(self.backend(batch), dtype=np.float32)
        # the tiler weights the logits in place; a runtime may hand out read-only buffers
        return logits if logits.flags.writeable else logits.copy()

    def labels(self, summed: np.ndarray) -> np.ndarray:
        return np.argmax(summed, axis=0).astype(np.uint8)

    def softmax_(self, logits: np.ndarray) -> None:
        classes, height, width = logits.shape
        rows = max(1, SOFTMAX_BLOCK // max(1, classes * width))
        for start in range(0, height, rows):
            band = logits[:, start : start + rows]
            band -= band.max(axis=0, keepdims=True)
            np.exp(band, out=band)
            band /= band.sum(axis=0, keepdims=True)

    def to_host(self, array: np.ndarray) -> np.ndarray:
        return array

    def shift_rows(self, array: np.ndarray, rows: int) -> None:
        kept = array.shape[-2] - rows
        if kept > 0:
            array[..., :kept, :] = array[..., rows:, :]  # numpy copies overlapping ranges correctly
        array[..., max(kept, 0) :, :] = 0


class TorchArrays:
    """Tensors on ``device``; ``forward`` maps a batch tensor there to float32 logits there.

    The image goes to the device once, in its own dtype (a uint8 photo is a quarter of its float32 size);
    windows are cut, converted and standardised there, and the canvas stays there until the end.
    """

    def __init__(self, device: torch.device, forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.device = device
        self._forward = forward

    def image(self, pixels: np.ndarray) -> torch.Tensor:
        import torch

        if pixels.dtype == np.bool_:
            pixels = pixels.view(np.uint8)
        elif pixels.dtype.kind == "f" and pixels.dtype != np.float32:
            pixels = pixels.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)

    def zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        import torch

        return torch.zeros(shape, dtype=torch.float32, device=self.device)

    def constant(self, values: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.asarray(values, np.float32)).to(self.device)

    def standardize(
        self, window: torch.Tensor, scale: float, mean: torch.Tensor, std: torch.Tensor, out: torch.Tensor
    ) -> None:
        # the same float32 operations, in the same order, as NumpyArrays: both give the same bits
        out.copy_(window.permute(2, 0, 1))
        if scale != 1.0:
            out.mul_(np.float32(scale).item())
        out.sub_(mean).div_(std)

    def pad(self, batch: torch.Tensor, rows: tuple[int, int], columns: tuple[int, int], mode: PadMode) -> torch.Tensor:
        import torch.nn.functional as F

        return F.pad(batch, (*columns, *rows), mode=mode)

    def flip(self, batch: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        return batch.flip(axes)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self._forward(batch)

    def labels(self, summed: torch.Tensor) -> np.ndarray:
        import torch

        return self.to_host(summed.argmax(dim=0).to(torch.uint8))

    def softmax_(self, logits: torch.Tensor) -> None:
        classes, height, width = logits.shape
        rows = max(1, SOFTMAX_BLOCK // max(1, classes * width))
        for start in range(0, height, rows):
            band = logits[:, start : start + rows]
            band.sub_(band.amax(dim=0, keepdim=True)).exp_()
            band.div_(band.sum(dim=0, keepdim=True))

    def to_host(self, array: torch.Tensor) -> np.ndarray:
        result: np.ndarray = array.cpu().numpy()
        return result

    def shift_rows(self, array: torch.Tensor, rows: int) -> None:
        kept = array.shape[-2] - rows
        if kept > 0:
            array[..., :kept, :] = array[..., rows:, :].clone()  # torch refuses overlapping in-place copies
        array[..., max(kept, 0) :, :] = 0
