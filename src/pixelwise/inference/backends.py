"""What runs the network for the predictor: a ``Backend`` maps a numpy batch of tiles to numpy logits.

``TorchBackend`` runs a PyTorch module; an ONNX Runtime session fits the same seam. Each backend imports
its runtime when it is built, never with this module, so that the tiler and a numpy backend need neither.
``load_backend`` opens a trained model file with the backend its format needs, and reads its
``InferenceSpec``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from pixelwise.inference.spec import InferenceSpec

if TYPE_CHECKING:
    import torch
    from torch import nn


@runtime_checkable
class Backend(Protocol):
    """Runs the network: (N, C, h, w) float32 numpy batch -> (N, K, h, w) float32 numpy logits.

    Any callable with that signature is one (a plain function too).
    """

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """A PyTorch module as a backend: eval mode, ``torch.inference_mode``, channels-last on the CPU.

    channels_last lets oneDNN pick its fastest convolution kernels (about 1.3× on this kind of CPU).
    The module is moved to ``device`` and switched to eval mode in place.
    """

    def __init__(self, model: nn.Module, *, device: str | torch.device = "cpu", channels_last: bool = True) -> None:
        import torch

        self.device = torch.device(device)
        self.channels_last = channels_last
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            logits = self.model(tensor)
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"the model returned {type(logits).__name__}, expected a logits tensor")
        result: np.ndarray = logits.float().contiguous().cpu().numpy()
        return result


def load_backend(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> tuple[Backend, InferenceSpec]:
    """The network of a trained model file, ready to run, and its spec.

    Today's one format is a checkpoint of ``pixelwise train``: a ``.pt`` file or the run folder holding it,
    run by ``TorchBackend`` on ``device``. Other formats plug in here, chosen by the file's suffix. A
    missing, corrupt or foreign file is a PixelwiseError naming it.
    """
    from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint

    loaded = load_checkpoint(path, map_location="cpu")
    spec = InferenceSpec.from_checkpoint(loaded)
    return TorchBackend(model_from_checkpoint(loaded), device=device), spec
