"""CPU backends for one network: what an smp user writes against pixelwise's backends. One run, same weights.

For unet-small and unet-resnet34 (smp's Unet on a ResNet-34 encoder, random weights, no download):

(a) one 512² image, batch 1, images/s (median of interleaved single passes), and the share of pixels whose
    argmax equals that of eager fp32:
    - smp-style eager fp32: ``model.eval()``, ``torch.no_grad()``, NCHW float32 (what an smp user writes);
    - PyTorch channels_last (model and input);
    - pixelwise ``TorchBackend`` fp32 (channels_last, its default) and, on a CPU with bf16 hardware, bf16;
    - pixelwise ``OnnxBackend``: the network as ``pixelwise export`` writes it, in ONNX Runtime;
    - pixelwise ``OpenVinoBackend`` (where openvino is installed): the same file in OpenVINO, fp32, and bf16
      on a CPU with bf16 hardware.
(b) one 2048² image through the tiler (``Predictor``: tile 512, overlap 0.5, batch 1), seconds, with each
    pixelwise backend and with the eager fp32 model as the backend (tiling by hand with the smp model),
    mask agreement with the latter.

Target: pixelwise's best CPU backend (among those with masks equal on ≥ 99.9 % of pixels) ≥ 2.5× eager fp32.

    .venv/bin/python bench/backends.py                 # about 15 minutes on two shared cores
    .venv/bin/python bench/backends.py --quick         # smoke run: 256², unet-small only
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import statistics
import time

import numpy as np
import torch

from pixelwise.data.classes import ClassSpec
from pixelwise.hardware import cpu_has_bf16
from pixelwise.inference.backends import Backend, TorchBackend
from pixelwise.inference.onnx_backend import OnnxBackend
from pixelwise.inference.onnx_export import onnx_bytes
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.models.network import SegmentationNetwork
from pixelwise.models.registry import create_model

NUM_CLASSES = 3


def build(name: str) -> SegmentationNetwork:
    torch.manual_seed(0)
    if name == "unet-resnet34":
        return create_model("unet", num_classes=NUM_CLASSES, in_channels=3, encoder="resnet34").eval()
    return create_model("unet-small", num_classes=NUM_CLASSES, in_channels=3).eval()


def eager(model: torch.nn.Module) -> Backend:
    """The smp user's forward: NCHW float32 under no_grad, on numpy batches (so it also fits the tiler)."""

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            result: np.ndarray = model(torch.from_numpy(batch)).numpy()
            return result

    return run


def channels_last(model: torch.nn.Module) -> Backend:
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            tensor = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            result: np.ndarray = fast(tensor).contiguous().numpy()
            return result

    return run


def backends(model: SegmentationNetwork, spec: InferenceSpec, threads: int) -> dict[str, Backend]:
    start = time.perf_counter()
    exported = OnnxBackend(onnx_bytes(model, spec), threads=threads)
    print(f"    (export to ONNX: {time.perf_counter() - start:.0f} s)")
    sides: dict[str, Backend] = {
        "smp-style eager fp32": eager(copy.deepcopy(model)),
        "PyTorch channels_last": channels_last(model),
        "pixelwise torch fp32": TorchBackend(copy.deepcopy(model)),
    }
    if cpu_has_bf16():
        sides["pixelwise torch bf16"] = TorchBackend(copy.deepcopy(model), precision="bf16")
    sides["pixelwise onnxruntime"] = exported
    if importlib.util.find_spec("openvino") is not None:
        from pixelwise.inference.openvino_backend import OpenVinoBackend

        data = onnx_bytes(model, spec)
        sides["pixelwise openvino fp32"] = OpenVinoBackend(data, threads=threads)
        if cpu_has_bf16():
            sides["pixelwise openvino bf16"] = OpenVinoBackend(data, threads=threads, precision="bf16")
    return sides


def single_images(sides: dict[str, Backend], size: int, rounds: int) -> None:
    """(a): images/s at batch 1, interleaved, median; argmax agreement with eager fp32."""
    batch = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    reference = sides["smp-style eager fp32"](batch).argmax(axis=1)
    agreement = {name: float((side(batch).argmax(axis=1) == reference).mean()) for name, side in sides.items()}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            start = time.perf_counter()
            side(batch)
            seconds[name].append(time.perf_counter() - start)
    base = statistics.median(seconds["smp-style eager fp32"])
    print(f"  (a) {size}², batch 1, median of {rounds} interleaved passes:")
    for name in sides:
        value = statistics.median(seconds[name])
        print(
            f"      {name:24s} {1 / value:6.2f} img/s   ×{base / value:.2f} eager   "
            f"argmax = eager on {100 * agreement[name]:.3f}% of pixels"
        )


def tiled_image(sides: dict[str, Backend], spec: InferenceSpec, size: int, tile: int) -> None:
    """(b): one size² image through the predictor with each backend (one pass each, after a warm-up)."""
    image = np.random.default_rng(1).random((size, size, 3), dtype=np.float32)
    seconds: dict[str, float] = {}
    labels: dict[str, np.ndarray] = {}
    for name, side in sides.items():
        if name == "PyTorch channels_last":
            continue  # the same kernels as pixelwise torch fp32
        predictor = Predictor(side, spec, tile_size=tile, batch_size=1)
        predictor.predict_labels(image[:tile, :tile])
        start = time.perf_counter()
        labels[name] = predictor.predict_labels(image)
        seconds[name] = time.perf_counter() - start
    base = seconds["smp-style eager fp32"]
    print(f"  (b) {size}² through the tiler (tile {tile}, overlap 0.5, batch 1):")
    for name, value in seconds.items():
        shown = "eager fp32 as the backend" if name == "smp-style eager fp32" else name
        same = (labels[name] == labels["smp-style eager fp32"]).mean()
        print(f"      {shown:26s} {value:7.1f} s   ×{base / value:.2f} eager   masks equal on {100 * same:.3f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, unet-small only")
    parser.add_argument("--models", default="unet-small,unet-resnet34")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    flags = "with bf16 hardware" if cpu_has_bf16() else "without bf16 hardware"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {flags}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    models = ["unet-small"] if arguments.quick else arguments.models.split(",")
    size, big, tile = (256, 512, 256) if arguments.quick else (512, 2048, 512)
    for name in models:
        model = build(name)
        spec = InferenceSpec(
            model=name,
            classes=ClassSpec.default(NUM_CLASSES),
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
            in_channels=3,
            tile_size=tile,
            stride=model.stride,
        )
        print(f"{name}:")
        sides = backends(model, spec, arguments.threads)
        single_images(sides, size, 3 if arguments.quick else arguments.rounds)
        tiled_image(sides, spec, big, tile)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
