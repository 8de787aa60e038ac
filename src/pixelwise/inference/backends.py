"""What runs the network for the predictor: a ``Backend`` maps a numpy batch of tiles to numpy logits.

``TorchBackend`` runs a PyTorch module; ``OnnxBackend`` (``inference.onnx_backend``) an exported model in
ONNX Runtime. Each backend imports its runtime when it is built, never with this module, so that the tiler
and a numpy backend need neither. ``RUNTIMES`` is the one registry of inference runtimes (what
``--backend`` names: the files each reads, its devices and precisions, the package it needs); a new
runtime is a module with its backend and one line there. ``load_backend`` opens a trained model file with
the runtime asked for (or ``auto``'s choice), resolves the device once, and reads its ``InferenceSpec``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.inference.arrays import Arrays, TorchArrays
from pixelwise.inference.spec import InferenceSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pixelwise.hardware import Precision

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

    runtime = "torch"

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


@dataclass(frozen=True)
class Runtime:
    """One inference runtime: what the ``--backend`` flag names.

    ``reads``: the model files it runs itself (``.pt``: a checkpoint or its run folder; ``.onnx``); a
    runtime that reads only ``.onnx`` runs a checkpoint through its cached export
    (``onnx_export.cached_onnx``). ``devices``: the device types it runs on. ``precisions``: what it computes
    in. ``module``: the package it needs (looked for without importing it), from the pixelwise ``extra``.
    ``open``: (model file, device, precision, threads) -> the backend. ``cpu_rank``: ``auto``'s order on the
    CPU, fastest first (measured: ``bench/backends.py``).
    """

    name: str
    summary: str
    reads: tuple[str, ...]
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    module: str
    extra: str
    open: Callable[[Path, str, str, int | None], tuple[Backend, InferenceSpec]]
    cpu_rank: int = 0

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False


def _open_torch(file: Path, device: str, precision: str, threads: int | None) -> tuple[Backend, InferenceSpec]:
    from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint

    loaded = load_checkpoint(file, map_location="cpu")
    return TorchBackend(
        model_from_checkpoint(loaded), device=device, precision=precision
    ), InferenceSpec.from_checkpoint(loaded)


def _open_onnx(file: Path, device: str, precision: str, threads: int | None) -> tuple[Backend, InferenceSpec]:
    from pixelwise.inference.onnx_backend import load_onnx

    return load_onnx(file, threads=threads)


def _open_openvino(file: Path, device: str, precision: str, threads: int | None) -> tuple[Backend, InferenceSpec]:
    from pixelwise.hardware import resolve_precision
    from pixelwise.inference.openvino_backend import load_openvino

    # bf16 where the CPU computes it in hardware, else fp32 with a note (as PyTorch's)
    return load_openvino(file, threads=threads, precision=resolve_precision(precision, "cpu"))


# one line per runtime; a new one is a module with its ``open`` and a line here
RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime(
            "torch",
            "PyTorch: checkpoints, on the CPU or a CUDA GPU, fp32/fp16/bf16",
            reads=(".pt",),
            devices=("cpu", "cuda"),
            precisions=("fp32", "fp16", "bf16"),
            module="torch",
            extra="",
            open=_open_torch,
        ),
        Runtime(
            "onnx",
            "ONNX Runtime: .onnx files (a checkpoint through its cached export), CPU, fp32",
            reads=(".onnx",),
            devices=("cpu",),
            precisions=("fp32",),
            module="onnxruntime",
            extra="onnx",
            open=_open_onnx,
            cpu_rank=1,
        ),
        Runtime(
            "openvino",
            "OpenVINO: .onnx files (a checkpoint through its cached export), CPU, fp32 (bf16 asked for)",
            reads=(".onnx",),
            devices=("cpu",),
            precisions=("fp32", "bf16"),
            module="openvino",
            extra="openvino",
            open=_open_openvino,
            cpu_rank=2,
        ),
    )
}
BACKENDS = ("auto", *RUNTIMES)


def load_backend(
    path: str | os.PathLike[str],
    *,
    backend: str | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
) -> tuple[Backend, InferenceSpec]:
    """The network of a trained model file, ready to run, and its spec: the one entry for model files.

    ``path``: a checkpoint of ``pixelwise train`` (a ``.pt`` file or its run folder) or an ``.onnx`` of
    ``pixelwise export``. ``backend``: a runtime of ``RUNTIMES`` (``torch``, ``onnx`` ...), None for the
    file's own (PyTorch for a checkpoint, ONNX Runtime for an ``.onnx``), or ``auto`` (the command line's):
    the fastest installed runtime that runs the file on the device in the precision, never one that needs
    an export first: a checkpoint runs in an ONNX runtime only once its export is cached (``--backend onnx``
    makes it). ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (resolved here, once); ``precision``:
    ``auto``, ``fp32``, ``fp16``, ``bf16``; ``threads``: CPU threads of a runtime that takes them (PyTorch's
    are set with ``torch.set_num_threads``). A missing, corrupt or foreign file is a PixelwiseError naming it.
    """
    from pixelwise.hardware import PRECISIONS

    if precision not in PRECISIONS:
        raise PixelwiseError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    file = Path(path)
    onnx_file = file.suffix.lower() == ".onnx"
    name = backend or ("onnx" if onnx_file else "torch")
    if name not in BACKENDS:
        raise PixelwiseError(f"backend {name!r}{did_you_mean(name, BACKENDS)}: choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        name = _fastest(file, str(device), precision)
    runtime = RUNTIMES[name]
    if onnx_file and ".onnx" not in runtime.reads:
        raise PixelwiseError(
            f"{file}: an ONNX model runs in an ONNX runtime; give the .pt checkpoint for --backend {name}"
        )
    if not runtime.installed():
        if runtime.name == "torch":
            raise PixelwiseError(
                f"{file}: a checkpoint needs PyTorch, which is not installed here; predict with an .onnx from "
                "'pixelwise export', or install pixelwise with its dependencies"
            )
        raise PixelwiseError(f"{file}: {runtime.module} is not installed; pip install 'pixelwise[{runtime.extra}]'")
    resolved = _device(file, runtime, str(device))
    _check_precision(file, runtime, precision)
    if onnx_file or ".pt" in runtime.reads:
        return runtime.open(file, resolved, precision, threads)
    return runtime.open(_exported(file, threads), resolved, precision, threads)


def runtime_help() -> str:
    """What ``--backend`` says of each runtime, from the registry."""
    listed = "; ".join(f"{runtime.name}: {runtime.summary}" for runtime in RUNTIMES.values())
    return (
        "auto: the fastest installed runtime for the device that runs the model without exporting it first (a "
        f"checkpoint in an ONNX runtime once its export is cached: run once with --backend onnx). {listed}."
    )


def _fastest(file: Path, device: str, precision: str) -> str:
    """``auto``: among the installed runtimes that run ``file`` on ``device`` in ``precision`` without an export
    to make first, the fastest (``cpu_rank``); PyTorch for a checkpoint otherwise."""

    def runs(runtime: Runtime, *, on_cpu: bool) -> bool:
        fits = precision == "auto" or precision in runtime.precisions
        return runtime.installed() and fits and (on_cpu or "cuda" in runtime.devices)

    if file.suffix.lower() == ".onnx":  # decided without torch: the deploy path has none
        readers = [runtime for runtime in RUNTIMES.values() if ".onnx" in runtime.reads and runs(runtime, on_cpu=True)]
        return max(readers, key=lambda runtime: runtime.cpu_rank).name if readers else "onnx"
    on_cpu = device == "cpu" or (device == "auto" and not _cuda_available())
    exported = on_cpu and _export_is_cached(file)
    usable = [
        runtime
        for runtime in RUNTIMES.values()
        if runs(runtime, on_cpu=on_cpu) and (".pt" in runtime.reads or exported)
    ]
    return max(usable, key=lambda runtime: runtime.cpu_rank if on_cpu else 0).name if usable else "torch"


def _cuda_available() -> bool:
    if not RUNTIMES["torch"].installed():
        return False
    import torch

    return bool(torch.cuda.is_available())


def _device(file: Path, runtime: Runtime, device: str) -> str:
    """The device ``device`` names, resolved once; one the runtime does not run on is refused."""
    if runtime.name == "torch":
        from pixelwise.device import choose_device

        return str(choose_device(device))
    if device not in ("cpu", "auto") and "cuda" not in runtime.devices:
        if file.suffix.lower() == ".onnx":
            raise PixelwiseError(f"{file}: ONNX models run on the CPU here; use --device cpu (or auto)")
        raise PixelwiseError(
            f"{file}: --backend {runtime.name} runs on the CPU here; use --device cpu or --backend torch"
        )
    return "cpu"


def _check_precision(file: Path, runtime: Runtime, precision: str) -> None:
    """A precision the runtime does not compute in is refused, not ignored."""
    if precision not in ("auto", *runtime.precisions):
        raise PixelwiseError(
            f"{file}: {runtime.name} computes in {'/'.join(runtime.precisions)} (no {precision} kernels); use "
            f"--precision {runtime.precisions[0]} or auto, or --backend torch for {precision}"
        )


def _export_is_cached(file: Path) -> bool:
    from pixelwise.inference.onnx_export import cached_export_path

    try:
        return cached_export_path(file).is_file()
    except (OSError, PixelwiseError):
        return False


def _exported(file: Path, threads: int | None) -> Path:
    """The checkpoint's ONNX export: cached, or made now (once) and cached."""
    from pixelwise.checkpoint import load_checkpoint
    from pixelwise.inference.onnx_export import cached_onnx

    return cached_onnx(load_checkpoint(file, map_location="cpu"), threads=threads)
