"""Export a trained network to ONNX: one file with the weights and everything ``predict`` needs.

The bare network is exported (``SegmentationNetwork.network``, without its padding), with dynamic batch,
height and width, height and width multiples of the stride (``torch.export.Dim``): the padding is a Python
branch on the input's shape, which an export would freeze for the example's size. The tiler pads every
window to the stride outside the graph instead (``pixelwise.padding``, the same rule), so the file takes
any image. The ``InferenceSpec`` goes into the model's metadata as JSON (``onnx_backend.METADATA_KEY``).

Every export is checked before a byte is written: ONNX Runtime runs the file on shapes other than the
export's, odd and tiny ones among them, padded and cropped as the predictor does, against PyTorch running
the padded network. A file whose logits differ by more than ``TOLERANCE`` is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.inference.arrays import NumpyArrays, padded_forward
from pixelwise.inference.onnx_backend import METADATA_KEY, OnnxBackend, onnxruntime
from pixelwise.inference.spec import InferenceSpec

if TYPE_CHECKING:
    from pixelwise.checkpoint import Checkpoint
    from pixelwise.models.network import SegmentationNetwork

# opset 20 runs on ONNX Runtime 1.17 (2024) and later, and is the default of torch's exporter
OPSET = 20
# largest logit difference allowed, relative to the largest logit (at least 1): float32 kernels that fuse
# and reorder sums differ by 1e-7 to 1e-5; a wrong graph differs by whole logits
TOLERANCE = 1e-3
# architectures that do not export, and why (tried with torch 2.14's exporter; see tests/inference)
NOT_EXPORTABLE: dict[str, str] = {
    "pspnet": "its pyramid pooling (adaptive average pooling to 1, 2, 3 and 6 bins) is fixed at the export "
    "size, so every other size would come out wrong",
    "upernet": "the pyramid pooling in its decoder (adaptive average pooling to 1, 2, 3 and 6 bins) is fixed "
    "at the export size, so every other size would come out wrong",
}


@dataclass(frozen=True)
class ParityCheck:
    """ONNX Runtime against PyTorch on one input shape (N, C, H, W)."""

    shape: tuple[int, int, int, int]
    max_difference: float  # largest absolute logit difference
    scale: float  # largest absolute PyTorch logit
    agreement: float  # share of pixels with the same argmax

    @property
    def passed(self) -> bool:
        return self.max_difference <= TOLERANCE * max(1.0, self.scale)

    def describe(self) -> str:
        shape = "×".join(map(str, self.shape))
        verdict = "ok" if self.passed else f"FAILED (allowed {TOLERANCE * max(1.0, self.scale):.1e})"
        return (
            f"{shape}: largest logit difference {self.max_difference:.1e}, "
            f"argmax agreement {100 * self.agreement:.3f}% {verdict}"
        )


@dataclass(frozen=True)
class ExportReport:
    """What ``export`` wrote: the file, its size and opset, and the parity checks it passed."""

    path: Path
    opset: int
    size: int
    checks: tuple[ParityCheck, ...]


def export(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    opset: int = OPSET,
    overwrite: bool = False,
    threads: int | None = None,
    starting: Callable[[Path], None] | None = None,
) -> ExportReport:
    """Export a ``pixelwise train`` checkpoint (``.pt`` or its run folder) to the ONNX file ``out``.

    ``out`` defaults to the checkpoint's name with ``.onnx`` beside it (``best.pt`` -> ``best.onnx``); an
    existing file is replaced only with ``overwrite``. The file is written atomically and only after ONNX
    Runtime has matched PyTorch on four shapes (``ExportReport.checks``). A missing checkpoint, an
    architecture that does not export, a failed check or a missing onnxruntime is a PixelwiseError, and
    nothing is written. ``starting(target)`` is called once the inputs are checked, before the slow part.
    """
    from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint
    from pixelwise.files import atomic_path

    onnxruntime()  # the check needs it: fail before minutes of exporting
    loaded = load_checkpoint(checkpoint)
    source = Path(loaded.source)
    target = Path(out) if out is not None else source.with_suffix(".onnx")
    if target.suffix.lower() != ".onnx":
        raise PixelwiseError(f"{target}: an ONNX file must end in .onnx; e.g. -o {target.with_suffix('.onnx')}")
    if target.exists() and target.resolve() == source.resolve():
        raise PixelwiseError(f"{target}: is the checkpoint itself; give another output file")
    if target.exists() and not overwrite:
        raise PixelwiseError(f"{target}: exists already; add --overwrite or give another output file")
    spec = InferenceSpec.from_checkpoint(loaded)
    _refuse_unexportable(spec.model)
    model = model_from_checkpoint(loaded)
    if starting is not None:
        starting(target)
    data = onnx_bytes(model, spec, opset=opset)
    checks = check_parity(model, data, spec, threads=threads)
    failed = [check for check in checks if not check.passed]
    if failed:
        raise PixelwiseError(
            f"{source}: ONNX Runtime does not match PyTorch ({failed[0].describe()}); nothing written. "
            "Predict with the .pt checkpoint, or report the architecture"
        )
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return ExportReport(path=target, opset=opset, size=len(data), checks=tuple(checks))


def onnx_bytes(model: SegmentationNetwork, spec: InferenceSpec, *, opset: int = OPSET) -> bytes:
    """The serialised ONNX model of ``model``'s bare network, with ``spec`` in its metadata."""
    import torch

    _refuse_unexportable(spec.model)
    stride = model.stride
    # two of everything: the exporter specialises dimensions that are 0 or 1 in the example
    example = torch.zeros(2, spec.in_channels, 2 * stride, 2 * stride)
    batch = torch.export.Dim("batch", min=1, max=65536)
    rows, columns = (torch.export.Dim(name, min=1, max=65536 // stride) for name in ("rows", "columns"))
    network = model.network.eval()
    try:
        with _quiet(), _out_of_place(network), _static_same_padding(network, spec.in_channels, stride):
            program = torch.onnx.export(
                network,
                (example,),
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes=({0: batch, 2: stride * rows, 3: stride * columns},),
                verbose=False,
            )
            if program is None:  # only the legacy exporter returns nothing
                raise RuntimeError("the exporter returned no program")
            proto = program.model_proto
    except Exception as error:  # torch.export's UserError, the ONNX lowering's errors, missing onnxscript ...
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise PixelwiseError(
            f"model {spec.model!r} cannot be exported to ONNX ({type(error).__name__}: {reason}); "
            "predict with the .pt checkpoint"
        ) from None
    metadata = {
        METADATA_KEY: json.dumps(spec.to_dict()),
        "pixelwise_version": _pixelwise_version(),
        "torch_version": torch.__version__,
        "opset": str(opset),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"pixelwise {spec.model}: {', '.join(spec.classes.names)}"
    if proto.ByteSize() >= 2**31:
        raise PixelwiseError(f"model {spec.model!r} has more than 2 GB of weights, which one ONNX file cannot hold")
    data: bytes = proto.SerializeToString()
    return data


def check_parity(
    model: SegmentationNetwork, data: bytes, spec: InferenceSpec, *, threads: int | None = None
) -> list[ParityCheck]:
    """Run the exported ``data`` in ONNX Runtime and ``model`` in PyTorch on four shapes that differ from the
    export's: an odd one (37×50), a tiny one (1×1), three at once of a tall one (3·stride × stride), and
    one the size of a tile (at most 256²). Different aspect ratios matter: a layer frozen at the export
    size (adaptive pooling) can still match on square inputs.

    ONNX Runtime gets each input padded to the stride and its logits cropped back, as in the predictor;
    PyTorch runs the padding network. Random standardised inputs, seeded.
    """
    import torch

    backend = OnnxBackend(data, threads=threads)
    stride, channels = model.stride, spec.in_channels
    tile = -(-min(spec.tile_size, 256) // stride) * stride
    shapes = [(1, channels, 37, 50), (1, channels, 1, 1), (3, channels, 3 * stride, stride), (1, channels, tile, tile)]
    generator = np.random.default_rng(0)
    checks = []
    for shape in shapes:
        images = generator.standard_normal(shape, dtype=np.float32)
        try:
            with torch.no_grad():
                expected = model.eval()(torch.from_numpy(images)).numpy()
            logits = padded_forward(NumpyArrays(backend), images, stride)
        except Exception as error:  # a network that cannot take this size at all, in either runtime
            reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
            shown = "×".join(map(str, shape))
            raise PixelwiseError(f"model {spec.model!r} fails on a {shown} input ({reason})") from None
        if logits.shape != expected.shape:  # a size frozen in the graph: no logit to compare
            checks.append(
                ParityCheck(shape=shape, max_difference=np.inf, scale=float(np.abs(expected).max()), agreement=0.0)
            )
            continue
        checks.append(
            ParityCheck(
                shape=shape,
                max_difference=float(np.abs(logits - expected).max()),
                scale=float(np.abs(expected).max()),
                agreement=float((logits.argmax(axis=1) == expected.argmax(axis=1)).mean()),
            )
        )
    return checks


def _refuse_unexportable(name: str) -> None:
    if name in NOT_EXPORTABLE:
        raise PixelwiseError(f"model {name!r} cannot be exported to ONNX: {NOT_EXPORTABLE[name]}")


def exportable(name: str) -> bool:
    """Whether architecture ``name`` is known to export (the others are refused before trying)."""
    return name not in NOT_EXPORTABLE


def cache_folder() -> Path:
    """Where ``--backend onnx|auto`` keeps the exports of checkpoints: ``$PIXELWISE_CACHE`` or
    ``$XDG_CACHE_HOME/pixelwise`` (``~/.cache/pixelwise``), folder ``onnx``."""
    root = os.environ.get("PIXELWISE_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pixelwise")
    return Path(root) / "onnx"


def cached_export_path(checkpoint_file: str | os.PathLike[str]) -> Path:
    """Where the export of this checkpoint file is cached: the name holds a hash of the file, the opset and
    the torch version, so a retrained model, or another exporter, makes a new file."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    with open(checkpoint_file, "rb") as content:
        for block in iter(lambda: content.read(1 << 20), b""):
            digest.update(block)
    return cache_folder() / f"{digest.hexdigest()[:24]}-opset{OPSET}-torch{version('torch')}.onnx"


def cached_onnx(checkpoint: Checkpoint, *, threads: int | None = None) -> Path:
    """The ONNX export of a loaded checkpoint, made (and checked) once and kept in ``cache_folder()``.

    Exporting takes a while, so the first use says so. Where the cache cannot be written (a read-only home),
    the export goes to a temporary folder for this process, with a note.
    """
    import tempfile

    from pixelwise.checkpoint import model_from_checkpoint
    from pixelwise.files import atomic_path

    if checkpoint.path is None:
        raise PixelwiseError("a checkpoint made in memory has no file to export and cache; save it first")
    source = checkpoint.path
    target = cached_export_path(source)
    if target.is_file():
        return target
    spec = InferenceSpec.from_checkpoint(checkpoint)
    _refuse_unexportable(spec.model)
    warnings.warn(
        f"exporting {source} to ONNX once for ONNX Runtime (cached in {target.parent}); --backend torch skips this",
        stacklevel=2,
    )
    model = model_from_checkpoint(checkpoint)
    data = onnx_bytes(model, spec)
    failed = [check for check in check_parity(model, data, spec, threads=threads) if not check.passed]
    if failed:
        raise PixelwiseError(f"{source}: ONNX Runtime does not match PyTorch ({failed[0].describe()})")
    try:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    except OSError as error:
        target = Path(tempfile.mkdtemp(prefix="pixelwise-onnx-")) / target.name
        target.write_bytes(data)
        warnings.warn(
            f"cannot write the export cache {cache_folder()} ({error.strerror or error}); using an export in "
            f"{target.parent} for this run (set PIXELWISE_CACHE to a writable folder to keep it)",
            stacklevel=2,
        )
    return target


@contextlib.contextmanager
def _static_same_padding(network: Any, channels: int, stride: int) -> Iterator[bool]:
    """timm's TensorFlow "same" padding as constants while exporting: seconds instead of minutes.

    timm pads a stride-s layer's input of side x by ``max((ceil(x / s) - 1) * s + (k - 1) * d + 1 - x, 0)``
    (``timm.layers.padding.get_same_padding``), computed on every call. Traced with symbolic sides, each such
    layer nests the previous one's ceiling in the next side's expression, and torch's shape reasoning spent
    400 s on these expressions for a U-Net on EfficientNet-Lite0 (issue 24). Where a layer's input side is a
    multiple of its stride the padding is the constant ``max((k - 1) * d + 1 - s, 0)``. The exported sides
    are multiples of the network's ``stride``; one eager pass on a ``stride`` x ``stride`` image shows
    whether every such layer then sees a multiple of its own stride (if it does there, every layer divides
    evenly, so it does for every multiple). Only then are the constants used (yields True); torch's own
    checks do not catch a wrong constant (a derived side's divisibility is not known while tracing). The
    parity checks compare the file with the unchanged network either way.
    """
    import sys

    import torch

    padding: Any = sys.modules.get("timm.layers.padding")
    if padding is None:  # no timm layer in this network
        yield False
        return
    original = padding.get_same_padding
    sides: list[tuple[int, int]] = []

    def recorded(x: Any, kernel_size: int, stride: int, dilation: int) -> Any:
        sides.append((int(x), stride))
        return original(x, kernel_size, stride, dilation)

    def constant(x: Any, kernel_size: int, stride: int, dilation: int) -> Any:
        return max((kernel_size - 1) * dilation + 1 - stride, 0)

    padding.get_same_padding = recorded
    try:
        with torch.no_grad():
            network(torch.zeros(1, channels, stride, stride))
    except Exception:  # too small for this network: leave timm's padding alone
        sides.append((1, 2))
    finally:
        padding.get_same_padding = original
    even = bool(sides) and all(side % layer_stride == 0 for side, layer_stride in sides)
    if even:
        padding.get_same_padding = constant
    try:
        yield even
    finally:
        padding.get_same_padding = original


@contextlib.contextmanager
def _out_of_place(network: Any) -> Iterator[None]:
    """Activations and dropouts that work in place (``inplace=True``) compute a new tensor while exporting.

    The exporter rewrites every in-place operation into a copy, and with symbolic shapes that rewrite cost
    0.4 s per operation on this project's CPUs (a third of a U-Net's export); the ONNX graph is the same.
    """
    switched = [module for module in network.modules() if getattr(module, "inplace", None) is True]
    for module in switched:
        module.inplace = False
    try:
        yield
    finally:
        for module in switched:
            module.inplace = True


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter reports each step on stdout and warns about graph details: none of it is the user's."""
    import logging

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def _pixelwise_version() -> str:
    from pixelwise import __version__

    return __version__
