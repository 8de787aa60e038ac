"""Where the service meets the model: the one place that loads a predictor and knows its backend.

The service needs little of a predictor (:class:`ServedPredictor`): its classes, its input channels, its
tile size, overlap and TTA setting, and ``predict_labels(image)``. Everything that depends on how a model
is stored or run (a checkpoint through PyTorch, later an ``.onnx`` file through ONNX Runtime) lives in this
module, so that the rest of the service imports no PyTorch; :func:`load_predictor` imports it when it
loads a PyTorch checkpoint, not before.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from pixelwise.data.classes import ClassSpec


class ServedPredictor(Protocol):
    """What the service uses of :class:`pixelwise.inference.predictor.Predictor`."""

    @property
    def classes(self) -> ClassSpec: ...
    @property
    def in_channels(self) -> int: ...

    tile_size: int
    overlap: float
    tta: bool

    def predict_labels(self, image: np.ndarray, *, progress: Callable[[int], Any] | None = None) -> np.ndarray: ...


def load_predictor(
    path: str | os.PathLike[str], *, device: str = "auto", threads: int = 1, tile_size: int | None = None
) -> ServedPredictor:
    """The predictor of a model file, with ``threads`` compute threads for each inference slot.

    The runtime is ``--backend auto``'s (``inference.backends.load_backend``): an ``.onnx`` file
    (``pixelwise export``) in the fastest installed ONNX runtime, importing no PyTorch; a checkpoint in an
    ONNX runtime where its export is cached, else in PyTorch on ``device`` (auto: a CUDA GPU when torch sees
    one, cpu, cuda or cuda:N, resolved once). A missing or foreign file is a PixelwiseError naming it.
    """
    from pathlib import Path

    from pixelwise.inference.predictor import Predictor

    if Path(path).suffix.lower() != ".onnx":
        import torch

        # the intra-op pool is per calling thread: slots × threads is what the process uses at most
        torch.set_num_threads(threads)
    return Predictor.load(path, tile_size=tile_size, backend="auto", device=device, precision="fp32", threads=threads)


def backend_name(predictor: ServedPredictor) -> str:
    """``torch``, ``onnx`` ...: the runtime of the predictor's backend (``inference.backends.RUNTIMES``)."""
    backend = getattr(predictor, "backend", None)
    name = getattr(backend, "runtime", None) or type(backend if backend is not None else predictor).__name__
    return str(name).removesuffix("Backend").lower() or "unknown"


def with_options(
    predictor: ServedPredictor, *, tile_size: int | None = None, overlap: float | None = None, tta: bool | None = None
) -> ServedPredictor:
    """The predictor with one request's tiling options: a shallow copy sharing the network, never a change
    to the shared one (other slots use it at the same time)."""
    if tile_size is None and overlap is None and tta is None:
        return predictor
    variant = copy.copy(predictor)
    if tile_size is not None:
        variant.tile_size = tile_size
    if overlap is not None:
        variant.overlap = overlap
    if tta is not None:
        variant.tta = tta
    return variant
