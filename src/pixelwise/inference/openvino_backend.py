"""An exported model in OpenVINO on the CPU: the ``openvino`` runtime of ``inference.backends.RUNTIMES``.

OpenVINO reads the ``.onnx`` file ``pixelwise export`` writes (the bare network, the ``InferenceSpec`` in
its metadata) and compiles it for this CPU, using AVX-512, AMX and bf16 where the CPU has them. Like ONNX
Runtime it needs no PyTorch. The window shape changes from image to image (dynamic height and width); the
compiled model takes any, recompiling its kernels per new shape once.

Precision: fp32 by default (``INFERENCE_PRECISION_HINT`` f32: OpenVINO would otherwise run bf16 on a CPU
with bf16 hardware, silently). ``bf16`` is asked for with ``--precision bf16`` on such a CPU; the agreement
of its labels with fp32 is the caller's to measure (``bench/backends.py``: printed there). int8 needs a
calibration set and NNCF: not offered.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.inference.spec import InferenceSpec


def openvino() -> ModuleType:
    """The openvino module, or a PixelwiseError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise PixelwiseError(
            "openvino is not installed; pip install 'pixelwise[openvino]', or use --backend onnx or torch"
        ) from None
    return openvino


class OpenVinoBackend:
    """An ONNX model (a file or its bytes) compiled by OpenVINO for the CPU; a numpy ``Backend``.

    ``threads``: inference threads (None: OpenVINO's choice, one per core). ``precision``: ``fp32`` or
    ``bf16`` (a CPU with bf16 hardware).
    """

    runtime = "openvino"

    def __init__(
        self, model: str | os.PathLike[str] | bytes, *, threads: int | None = None, precision: str = "fp32"
    ) -> None:
        runtime = openvino()
        if precision not in ("fp32", "bf16"):
            raise PixelwiseError(f"OpenVINO runs fp32 or bf16 here, not {precision}")
        core = runtime.Core()
        network = core.read_model(model=model) if isinstance(model, bytes) else core.read_model(str(model))
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.precision = precision
        self.compiled = core.compile_model(network, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.metadata = _metadata(network)
        self.input_channels = _static(network.input(0).get_partial_shape()[1])
        self.output_classes = _static(network.output(0).get_partial_shape()[1])
        self.version = runtime.__version__

    @property
    def description(self) -> str:
        """What runs, in a few words: ``openvino 2026.4.1, cpu, fp32``."""
        return f"openvino {self.version.split('-')[0]}, cpu, {self.precision}"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        # the request reuses its output buffer: the tiler keeps the logits past the next call
        logits: np.ndarray = self.request.get_output_tensor(0).data.copy()
        return logits


def _metadata(network: Any) -> dict[str, str]:
    """The ONNX file's metadata properties (``pixelwise``: its spec as JSON ...), as OpenVINO keeps them."""
    try:
        framework = network.get_rt_info()["framework"]
    except (KeyError, RuntimeError):
        return {}
    return {str(key): str(value.astype(str)) for key, value in framework.items()}


def _static(dimension: Any) -> int | str:
    """A graph dimension as an int, or ``?`` when dynamic."""
    return int(dimension.get_length()) if dimension.is_static else "?"


def load_openvino(
    path: str | os.PathLike[str], *, threads: int | None = None, precision: str = "fp32"
) -> tuple[OpenVinoBackend, InferenceSpec]:
    """An ``.onnx`` file from ``pixelwise export`` compiled by OpenVINO, and its spec (read from the file's
    metadata as ONNX Runtime reads it). A missing or unreadable file is a PixelwiseError naming it."""
    from pixelwise.inference.onnx_backend import spec_from_metadata

    file = Path(path)
    if not file.is_file():
        raise PixelwiseError(f"{file}: no such model file; give an .onnx file from 'pixelwise export'")
    runtime = openvino()
    try:
        backend = OpenVinoBackend(file, threads=threads, precision=precision)
    except PixelwiseError:
        raise
    except Exception as error:  # OpenVINO's RuntimeError for a file it cannot read or compile
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise PixelwiseError(
            f"{file}: not a model OpenVINO {runtime.__version__.split('-')[0]} can run ({reason}); "
            "export it again with 'pixelwise export'"
        ) from None
    spec = spec_from_metadata(
        backend.metadata, channels=backend.input_channels, classes=backend.output_classes, source=str(file)
    )
    return backend, spec
