"""An exported model in ONNX Runtime: the deploy path, which needs numpy and onnxruntime and no PyTorch.

A file written by ``pixelwise export`` holds the bare network (no padding inside: the tiler pads every
window to the stride) and, in its metadata under ``pixelwise``, the ``InferenceSpec`` as JSON. The session
is set up for the predictor's workload: all graph optimisations; no memory pattern, because the window
shape changes from image to image and a pattern planned for one shape makes memory grow (onnxruntime#11118);
one call at a time, its threads from ``threads`` (0: one per physical core).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.inference.spec import InferenceSpec

METADATA_KEY = "pixelwise"


def onnxruntime() -> ModuleType:
    """The onnxruntime module, or a PixelwiseError saying how to install it."""
    # no telemetry: onnxruntime 1.32 queues an event in ~/.cache/Microsoft at import unless this is set first
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime
    except ImportError:
        raise PixelwiseError(
            "onnxruntime is not installed; pip install 'pixelwise[onnx]' (or onnxruntime), "
            "or predict with the .pt checkpoint and --backend torch"
        ) from None
    getattr(onnxruntime, "disable_telemetry_events", lambda: None)()  # and none later, if imported before
    return onnxruntime


class OnnxBackend:
    """An ONNX model (a file or its bytes) run by ONNX Runtime on the CPU; a numpy ``Backend``.

    ``threads``: intra-op threads (None or 0: ONNX Runtime's choice, one per physical core, pinned).
    """

    runtime = "onnx"

    def __init__(self, model: str | os.PathLike[str] | bytes, *, threads: int | None = None) -> None:
        runtime = onnxruntime()
        if threads is not None and threads < 0:
            raise PixelwiseError(f"threads must be 0 or more, got {threads}")
        options = runtime.SessionOptions()
        options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_mem_pattern = False
        options.execution_mode = runtime.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are about graph details, not the user's input
        source = model if isinstance(model, bytes) else str(model)
        self.session = runtime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        (self.input,), (self.output,) = self.session.get_inputs(), self.session.get_outputs()

    @property
    def description(self) -> str:
        """What runs, in a few words: ``onnxruntime 1.32.0, cpu, fp32``."""
        return f"onnxruntime {onnxruntime().__version__}, cpu, fp32"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        logits: np.ndarray = self.session.run([self.output.name], {self.input.name: batch})[0]
        return logits

    @property
    def metadata(self) -> dict[str, str]:
        properties: dict[str, str] = self.session.get_modelmeta().custom_metadata_map
        return properties


def load_onnx(path: str | os.PathLike[str], *, threads: int | None = None) -> tuple[OnnxBackend, InferenceSpec]:
    """An ``.onnx`` file from ``pixelwise export``, ready to run, and its spec.

    A missing or corrupt file, one without pixelwise's metadata, or one whose graph does not take the
    channels its metadata promises is a PixelwiseError naming it.
    """
    file = Path(path)
    if not file.is_file():
        raise PixelwiseError(f"{file}: no such model file; give an .onnx file from 'pixelwise export'")
    runtime = onnxruntime()
    try:
        backend = OnnxBackend(file, threads=threads)
    except PixelwiseError:
        raise
    except Exception as error:  # onnxruntime's InvalidProtobuf, Fail, InvalidGraph ... or too many outputs
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise PixelwiseError(
            f"{file}: not a model ONNX Runtime {runtime.__version__} can run ({reason}); "
            "export it again with 'pixelwise export'"
        ) from None
    return backend, read_spec(backend, source=str(file))


def read_spec(backend: OnnxBackend, *, source: str) -> InferenceSpec:
    """The ``InferenceSpec`` in the model's metadata, checked against the graph's input and output."""
    return spec_from_metadata(
        backend.metadata, channels=backend.input.shape[1], classes=backend.output.shape[1], source=source
    )


def spec_from_metadata(metadata: dict[str, str], *, channels: object, classes: object, source: str) -> InferenceSpec:
    """The ``InferenceSpec`` under ``METADATA_KEY`` of an exported file's metadata (whatever runtime read it),
    checked against the graph's input ``channels`` and output ``classes`` (an int, or a symbol when dynamic)."""
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        raise PixelwiseError(
            f"{source}: an ONNX model without pixelwise metadata (classes, normalisation, stride); "
            "export it with 'pixelwise export CHECKPOINT'"
        )
    try:
        content: Any = json.loads(raw)
    except json.JSONDecodeError as error:
        raise PixelwiseError(f"{source}: its pixelwise metadata is not JSON ({error}); export it again") from None
    spec = InferenceSpec.from_dict(content, source=source)
    if channels != spec.in_channels or (isinstance(classes, int) and classes != spec.num_classes):
        raise PixelwiseError(
            f"{source}: the graph takes {channels} channels and gives {classes} classes but its metadata says "
            f"{spec.in_channels} and {spec.num_classes}; the file was altered, export it again"
        )
    return spec
