"""Tiled inference against MONAI and the bare forward passes, on the CPU or a GPU; and its memory. One run.

(a) One image through the same model and weights, interleaved rounds, best of each:

    - bare: the forward passes alone over the same tiles, pre-cut, standardised and already on the device
      (through ``TorchBackend.forward``, so channels_last and autocast are the predictor's);
    - MONAI ``sliding_window_inference``: Gaussian blending with σ = tile/8 (``sigma_scale=0.125``, as
      pixelwise), the same tile, overlap and batch, the standardised image already on the device, its
      logits left there;
    - pixelwise ``Predictor.predict_logits`` (blended logits back on the host as numpy) and
      ``predict_labels`` (the argmax, back on the host), from the numpy image in [0, 1].

    in fp32, and in fp16 (autocast) on CUDA; with the argmax agreement of pixelwise with MONAI and of fp16
    with fp32. Targets: on the CPU pixelwise ≤ 1.05× the bare forwards; on CUDA ≤ 1.1× MONAI in fp32 and,
    in fp16, faster than MONAI in fp32.
(b) On the CPU, the peak resident memory while predicting 1024² and 4096² images, each in a fresh
    subprocess: it should grow with the output canvas (K × H × W + H × W float32), not with the image.

Usage (MONAI is a bench-only dependency: ``pip install 'pixelwise[bench]'``)::

    .venv/bin/python bench/inference.py                    # CPU: unet-small, 2048², tile 256, batch 4
    .venv/bin/python bench/inference.py --device cuda      # unet-resnet34, 4096², tile 512, batch 8
    .venv/bin/python bench/inference.py --quick            # smoke run, small sizes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pixelwise.data.classes import ClassSpec
from pixelwise.inference.backends import TorchBackend
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.inference.tiling import tile_grid
from pixelwise.models.network import SegmentationNetwork
from pixelwise.models.registry import create_model

NUM_CLASSES = 3
MEAN, STD = 0.5, 0.25


@dataclass(frozen=True)
class Setting:
    model: str
    size: int
    tile: int
    batch: int


DEFAULTS = {
    "cpu": Setting("unet-small", 2048, 256, 4),
    "cuda": Setting("unet-resnet34", 4096, 512, 8),
}


def build_model(name: str, *, width: int = 16) -> SegmentationNetwork:
    """``unet-small`` (width 16) or ``unet-resnet34`` (smp's Unet on a ResNet-34 encoder), random weights."""
    torch.manual_seed(0)
    if name == "unet-resnet34":
        return create_model("unet", num_classes=NUM_CLASSES, in_channels=3, encoder="resnet34")
    return create_model("unet-small", num_classes=NUM_CLASSES, in_channels=3, width=width)


def spec(model: str, stride: int, tile_size: int = 256) -> InferenceSpec:
    return InferenceSpec(
        model=model,
        classes=ClassSpec.default(NUM_CLASSES),
        mean=(MEAN,) * 3,
        std=(STD,) * 3,
        in_channels=3,
        tile_size=tile_size,
        stride=stride,
    )


def timed(function: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


class CountingBackend(TorchBackend):
    """A TorchBackend that adds up the seconds spent in its forward passes (CPU only: on a GPU, timing each
    call would add a synchronisation per batch)."""

    inside = 0.0

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        result = super().forward(batch)
        self.inside += time.perf_counter() - start
        return result


def compare(setting: Setting, device: str, overlap: float, rounds: int) -> None:
    """(a): bare forwards, MONAI and pixelwise on one image, in each precision the device runs fast."""
    model = build_model(setting.model)
    image = np.random.default_rng(0).random((setting.size, setting.size, 3), dtype=np.float32)
    standardised = torch.from_numpy((image.transpose(2, 0, 1)[None] - MEAN) / STD).to(device)
    positions = tile_grid(setting.size, setting.size, setting.tile, overlap)
    tiles = [standardised[0, :, top : top + setting.tile, left : left + setting.tile] for top, left in positions]
    batches = [torch.stack(tiles[first : first + setting.batch]) for first in range(0, len(tiles), setting.batch)]
    print(
        f"(a) {setting.model}, {setting.size}² RGB, {len(positions)} tiles of {setting.tile}² "
        f"(overlap {overlap}, batch {setting.batch}), {device}; best of {rounds} interleaved rounds"
    )
    precisions = ["fp32", "fp16"] if device.startswith("cuda") else ["fp32"]
    labels = {
        precision: one_precision(model, image, standardised, batches, setting, device, precision, overlap, rounds)
        for precision in precisions
    }
    if "fp16" in labels:
        print(f"    argmax agreement fp16 / fp32 (pixelwise): {(labels['fp16'] == labels['fp32']).mean():.5f}")


def one_precision(
    model: SegmentationNetwork,
    image: np.ndarray,
    standardised: torch.Tensor,
    batches: list[torch.Tensor],
    setting: Setting,
    device: str,
    precision: str,
    overlap: float,
    rounds: int,
) -> np.ndarray:
    """Time the four sides in one precision, print them; pixelwise's labels for the agreement with fp32."""
    from monai.inferers import sliding_window_inference

    backend = TorchBackend(model, device=device, precision=precision)
    counting = CountingBackend(model, device=device, precision=precision)
    predictor = Predictor(counting, spec(setting.model, model.stride, setting.tile), batch_size=setting.batch)
    predictor.overlap = overlap
    within: list[float] = []

    def bare() -> None:
        for batch in batches:
            backend.forward(batch)

    def monai() -> torch.Tensor:
        with torch.no_grad():
            result: torch.Tensor = sliding_window_inference(
                standardised,
                roi_size=setting.tile,
                sw_batch_size=setting.batch,
                predictor=backend.forward,
                overlap=overlap,
                mode="gaussian",
                sigma_scale=0.125,
            )
            return result

    def logits() -> None:
        counting.inside = 0.0
        start = time.perf_counter()
        predictor.predict_logits(image)
        if not device.startswith("cuda"):
            within.append((time.perf_counter() - start) / counting.inside)

    sides: dict[str, Callable[[], object]] = {
        "bare forwards": bare,
        "MONAI sliding_window_inference": monai,
        "pixelwise predict_logits": logits,
        "pixelwise predict_labels": lambda: predictor.predict_labels(image),
    }
    for side in sides.values():  # warm-up: kernels picked, memory pools filled
        side()
    within.clear()
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            seconds[name].append(timed(side, device))
    best = {name: min(values) for name, values in seconds.items()}
    labels = predictor.predict_labels(image)
    monai_labels = monai().argmax(dim=1)[0].cpu().numpy()
    print(f"    {precision}:")
    for name, value in best.items():
        print(
            f"      {name:32s} {value:8.3f} s   ×{value / best['bare forwards']:.3f} bare"
            f"   ×{value / best['MONAI sliding_window_inference']:.3f} MONAI"
        )
    if within:
        print(f"      pixelwise predict_logits, within each run: ×{min(within):.3f} the time inside its forwards")
    print(f"      argmax agreement pixelwise / MONAI: {(labels == monai_labels).mean():.5f}")
    return labels


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak since the last reset) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def pointwise_predictor() -> Predictor:
    """A 1×1-convolution network: no activations to speak of, so memory is the tiling machinery's alone."""
    network = SegmentationNetwork(
        torch.nn.Conv2d(3, NUM_CLASSES, 1),
        stride=1,
        spec={"name": "pointwise", "num_classes": NUM_CLASSES, "in_channels": 3},
    )
    return Predictor(TorchBackend(network), spec("pointwise", network.stride), batch_size=4)


def peak_memory_child(size: int, pointwise: bool) -> None:
    """Run in a subprocess: print how far predicting one size × size image lifts the peak RSS (bytes)."""
    if pointwise:
        predictor = pointwise_predictor()
    else:
        model = build_model("unet-small", width=8)
        predictor = Predictor(TorchBackend(model), spec("unet-small", model.stride), batch_size=4)
    predictor.predict(np.zeros((64, 64, 3), np.float32))  # load kernels and allocator pools before measuring
    image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    # reset the peak to the current RSS (Linux clear_refs 5), so imports and set-up do not hide the growth
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    probabilities = predictor.predict(image)
    growth = _status_bytes("VmHWM") - before
    canvas = probabilities.nbytes + size * size * 4  # logit sums + weight sums
    print(json.dumps({"size": size, "growth": growth, "canvas": canvas, "seconds": time.perf_counter() - start}))


def peak_memory(size: int, *, pointwise: bool = False) -> dict[str, float]:
    """(b): peak-RSS growth of predicting a size × size image, measured in a fresh interpreter."""
    command = [sys.executable, __file__, "--child-memory", str(size), "--threads", str(torch.get_num_threads())]
    command += ["--pointwise"] if pointwise else []
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def memory(quick: bool) -> None:
    small, large = (512, 1024) if quick else (1024, 4096)
    low, high = peak_memory(small), peak_memory(large)
    mib = 1 / 2**20
    print(
        f"(b) peak RSS growth while predicting (unet-small width 8, tiles 256², batch 4, K={NUM_CLASSES}):\n"
        f"    {small}²: {low['growth'] * mib:.0f} MiB (canvas {low['canvas'] * mib:.0f} MiB); "
        f"{large}²: {high['growth'] * mib:.0f} MiB (canvas {high['canvas'] * mib:.0f} MiB)\n"
        f"    growth ratio {high['growth'] / max(low['growth'], 1):.1f} for a canvas ratio "
        f"{high['canvas'] / low['canvas']:.0f}; beyond the canvas: {(low['growth'] - low['canvas']) * mib:.0f} "
        f"and {(high['growth'] - high['canvas']) * mib:.0f} MiB (tile batches, constant in the image size)"
    )
    huge = 2048 if quick else 10_000
    biggest = peak_memory(huge, pointwise=True)
    tiles = len(tile_grid(huge, huge, 256, 0.5))
    print(
        f"    {huge}² with a 1×1-convolution network ({tiles} tiles, {biggest['seconds']:.0f} s): growth "
        f"{biggest['growth'] * mib:.0f} MiB for a canvas of {biggest['canvas'] * mib:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--model", choices=["unet-small", "unet-resnet34"], help="default: per device (see above)")
    parser.add_argument("--size", type=int, help="image side in pixels")
    parser.add_argument("--tile", type=int, help="tile side in pixels")
    parser.add_argument("--batch", type=int, help="tiles per forward pass")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    parser.add_argument("--no-memory", action="store_true", help="skip (b)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable ratios on a machine shared with other jobs)"
    )
    parser.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pointwise", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.child_memory:
        peak_memory_child(arguments.child_memory, arguments.pointwise)
        return

    device = arguments.device
    default = DEFAULTS["cuda" if device.startswith("cuda") else "cpu"]
    setting = Setting(
        arguments.model or default.model,
        arguments.size or (512 if arguments.quick else default.size),
        arguments.tile or (128 if arguments.quick else default.tile),
        arguments.batch or default.batch,
    )
    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, load average {os.getloadavg()[0]:.1f}")
    compare(setting, device, arguments.overlap, 1 if arguments.quick else arguments.rounds)
    if not device.startswith("cuda") and not arguments.no_memory:
        memory(arguments.quick)


if __name__ == "__main__":
    main()
