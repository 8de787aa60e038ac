"""What runs the network for the predictor: a ``Backend`` maps a numpy batch of tiles to numpy logits.

``TorchBackend`` runs a PyTorch module; ``OnnxBackend`` (``inference.onnx_backend``) an exported model in
ONNX Runtime. Each backend imports its runtime when it is built, never with this module, so that the tiler
and a numpy backend need neither. ``load_backend`` opens a trained model file with the backend its format
needs (or the one asked for), and reads its ``InferenceSpec``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.inference.arrays import Arrays, TorchArrays
from pixelwise.inference.spec import InferenceSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pixelwise.hardware import Precision

BackendName = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")
# a canvas goes on the GPU when it takes at most this share of the memory free there: the rest is for the
# network's activations and the convolution workspaces
DEVICE_SHARE = 0.5


@runtime_checkable
class Backend(Protocol):
    """Runs the network: (N, C, h, w) float32 numpy batch -> (N, K, h, w) float32 numpy logits.

    Any callable with that signature is one (a plain function too).
    """

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ArrayBackend(Backend, Protocol):
    """A backend that can also keep the tiler's arrays where it runs, so that tiles never leave the device.

    ``arrays(nbytes)`` gives the namespace for one image whose image and canvas take ``nbytes``, or None
    when they do not fit there (the tiler then blends on the host through ``__call__``).
    """

    def arrays(self, nbytes: int) -> Arrays | None: ...


class TorchBackend:
    """A PyTorch module as a backend: eval mode, no autograd, channels-last, optional autocast.

    channels_last lets oneDNN and cuDNN pick their fastest convolution kernels (about 1.3× on this kind of
    CPU). ``precision``: ``fp32``, ``fp16`` or ``bf16`` autocast, or ``auto`` (see
    ``hardware.resolve_precision``: fp16 on CUDA, fp32 on the CPU); logits always come out float32.
    ``blend``: where the predictor blends the tiles of this backend: ``device`` (the model's, in torch),
    ``host`` (numpy, tiles copied back per batch), or ``auto``: the device, except on a GPU whose free
    memory would be more than half taken by the image and the canvas (then the host). On the CPU both are
    the same memory; torch blends there with a little less overhead (1.010 against 1.015 of the bare
    forwards, bench/inference.py). The module is moved to ``device`` and switched to eval mode in place.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "cpu",
        channels_last: bool = True,
        precision: str = "fp32",
        blend: Literal["auto", "device", "host"] = "auto",
    ) -> None:
        import torch

        from pixelwise.hardware import resolve_precision

        self.device = torch.device(device)
        self.precision: Precision = resolve_precision(precision, str(self.device))
        self.channels_last = channels_last
        if blend not in ("auto", "device", "host"):
            raise PixelwiseError(f"blend {blend!r}: choose auto, device or host")
        self.blend = blend
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    @property
    def description(self) -> str:
        """What runs, in a few words: ``torch, cuda:0, fp16``."""
        return f"torch, {self.device}, {self.precision}"

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) float32 tensor on the device -> (N, K, h, w) float32 logits there."""
        import torch

        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        # no_grad rather than inference_mode: the tiler weights the logits in place afterwards, which
        # inference tensors refuse outside inference mode
        with torch.no_grad(), torch.autocast(self.device.type, dtype=half or torch.float32, enabled=half is not None):
            logits = self.model(batch)
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"the model returned {type(logits).__name__}, expected a logits tensor")
        return logits.float().contiguous()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        result: np.ndarray = self.forward(tensor).cpu().numpy()
        return result

    def arrays(self, nbytes: int) -> TorchArrays | None:
        if self.blend == "host" or (self.blend == "auto" and not self._fits(nbytes)):
            return None
        return TorchArrays(self.device, self.forward)

    def _fits(self, nbytes: int) -> bool:
        import torch

        if self.device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(self.device)
        # memory torch holds in its cache but does not use is free for the canvas too
        cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return nbytes <= DEVICE_SHARE * (free + cached)


def load_backend(
    path: str | os.PathLike[str],
    *,
    backend: str | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
) -> tuple[Backend, InferenceSpec]:
    """The network of a trained model file, ready to run, and its spec: the one entry for model files.

    An ``.onnx`` file (from ``pixelwise export``) runs in ONNX Runtime on the CPU, importing no PyTorch. A
    checkpoint of ``pixelwise train`` (a ``.pt`` file or its run folder) runs with ``backend``: None or
    ``torch``: ``TorchBackend`` on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) in ``precision``;
    ``onnx``: exported once (checked against PyTorch, cached: ``onnx_export.cached_onnx``) and run by ONNX
    Runtime; ``auto``: ONNX Runtime on the CPU in fp32 when it is installed and the architecture exports
    (the faster runtime there, see ``bench/backends.py``), else PyTorch. ``threads``: CPU threads for ONNX
    Runtime (PyTorch's are set with ``torch.set_num_threads``). A missing, corrupt or foreign file is a
    PixelwiseError naming it.
    """
    backend = backend or ("onnx" if Path(path).suffix.lower() == ".onnx" else "torch")
    if backend not in BACKENDS:
        raise PixelwiseError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    file = Path(path)
    if file.suffix.lower() == ".onnx":
        from pixelwise.inference.onnx_backend import load_onnx

        if backend == "torch":
            raise PixelwiseError(
                f"{file}: an ONNX model runs in ONNX Runtime; give the .pt checkpoint for --backend torch"
            )
        if str(device) not in ("cpu", "auto"):
            raise PixelwiseError(f"{file}: ONNX models run on the CPU here; use --device cpu (or auto)")
        _ask_cpu_precision(precision, file)
        return load_onnx(file, threads=threads)
    return _load_checkpoint(file, backend=backend, device=device, precision=precision, threads=threads)


def _load_checkpoint(
    file: Path, *, backend: str, device: str | torch.device, precision: str, threads: int | None
) -> tuple[Backend, InferenceSpec]:
    try:
        import torch  # noqa: F401  (only to say so in one line where it is missing)
    except ImportError:
        raise PixelwiseError(
            f"{file}: a checkpoint needs PyTorch, which is not installed here; predict with an .onnx from "
            "'pixelwise export', or install pixelwise with its dependencies"
        ) from None
    from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint
    from pixelwise.device import choose_device

    device = str(choose_device(str(device)))
    loaded = load_checkpoint(file, map_location="cpu")
    spec = InferenceSpec.from_checkpoint(loaded)
    if backend == "onnx" or (backend == "auto" and _onnx_runs_it_faster(spec, device, precision)):
        from pixelwise.inference.onnx_backend import OnnxBackend
        from pixelwise.inference.onnx_export import cached_onnx

        if device != "cpu":
            raise PixelwiseError(f"{file}: ONNX Runtime runs on the CPU here; use --device cpu or --backend torch")
        _ask_cpu_precision(precision, file)
        try:
            return OnnxBackend(cached_onnx(loaded, threads=threads), threads=threads), spec
        except PixelwiseError as error:
            if backend == "onnx":
                raise
            warnings.warn(f"{error}; running PyTorch instead", stacklevel=3)
    return TorchBackend(model_from_checkpoint(loaded), device=device, precision=precision), spec


def _onnx_runs_it_faster(spec: InferenceSpec, device: str, precision: str) -> bool:
    """``--backend auto`` for a checkpoint: ONNX Runtime where it is the faster runtime, i.e. on the CPU in
    fp32, when it is installed and the architecture exports (``bench/backends.py`` measures it)."""
    from pixelwise.inference.onnx_export import exportable

    installed = importlib.util.find_spec("onnxruntime") is not None
    return device == "cpu" and precision in ("auto", "fp32") and installed and exportable(spec.model)


def _ask_cpu_precision(precision: str, file: Path) -> None:
    """ONNX Runtime's CPU provider computes in fp32: a lower precision asked for is refused, not ignored."""
    if precision not in ("auto", "fp32"):
        raise PixelwiseError(
            f"{file}: ONNX Runtime on the CPU computes in fp32 (no bf16 kernels); use --precision fp32 or auto, "
            "or --backend torch for bf16"
        )
