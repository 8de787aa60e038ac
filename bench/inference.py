"""Tiled inference: what tiling and blending cost, and what memory grows with. Ratios from one run.

(a) time of ``Predictor.predict`` on a 2048 × 2048 image / time of the bare forward passes over the same
    tile batches (same model, same batch size): the price of tiling, blending and the softmax;
(c) peak resident memory while predicting 4096² and 1024² images, each in a fresh subprocess: it should
    grow with the output canvas (K × H × W + H × W float32), not with the network's activations;
(record) images/s of smp Unet-ResNet18 at 256², batch 1, eager (NCHW) and channels_last.

Usage: ``.venv/bin/python bench/inference.py`` (a few minutes on two cores; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from pixelwise.data.classes import ClassSpec
from pixelwise.inference.backends import Backend, TorchBackend
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.inference.tiling import tile_grid
from pixelwise.models.network import SegmentationNetwork
from pixelwise.models.registry import create_model

NUM_CLASSES = 3


def small_predictor(width: int, *, tile_size: int = 256, batch_size: int = 4) -> Predictor:
    """The project's small U-Net (random weights: speed and memory do not depend on training)."""
    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=NUM_CLASSES, in_channels=3, width=width)
    return Predictor(TorchBackend(model), spec("unet-small", model.stride, tile_size), batch_size=batch_size)


def spec(model: str, stride: int, tile_size: int = 256) -> InferenceSpec:
    classes = ClassSpec.default(NUM_CLASSES)
    return InferenceSpec(
        model=model,
        classes=classes,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        in_channels=3,
        tile_size=tile_size,
        stride=stride,
    )


class TimedBackend:
    """Wraps a backend and adds up the wall-clock and CPU seconds spent inside it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.wall = 0.0
        self.cpu = 0.0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        start, cpu = time.perf_counter(), time.process_time()
        logits = self.backend(batch)
        self.wall += time.perf_counter() - start
        self.cpu += time.process_time() - cpu
        return logits


def tiling_overhead(size: int, repeats: int) -> dict[str, float]:
    """(a): tiled prediction against the bare forward passes over the same tile batches.

    Two views of the same question. Separately: the forward passes alone over pre-cut batches, then
    ``predict``, interleaved, best of ``repeats``. Within one run: ``predict``'s own time against the time
    spent inside its backend calls, which neighbours' load cannot skew between the two.
    """
    predictor = small_predictor(16)
    timed = TimedBackend(predictor.backend)
    predictor.backend = timed
    image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    tile_height = tile_width = min(predictor.tile_size, size)
    positions = tile_grid(size, size, predictor.tile_size, predictor.overlap)
    batches = []
    for first in range(0, len(positions), predictor.batch_size):
        chunk = positions[first : first + predictor.batch_size]
        batch = np.stack([image[top : top + tile_height, left : left + tile_width] for top, left in chunk])
        batches.append(((batch - 0.5) / 0.25).transpose(0, 3, 1, 2).copy())
    timed.backend(batches[0])  # warm-up: oneDNN picks its kernels on the first call
    separate: list[tuple[float, float]] = []
    within: list[tuple[float, float]] = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            timed.backend(batch)
        bare = (time.perf_counter() - start, time.process_time() - cpu)
        timed.wall = timed.cpu = 0.0
        start, cpu = time.perf_counter(), time.process_time()
        predictor.predict(image)
        tiled = (time.perf_counter() - start, time.process_time() - cpu)
        separate.append((tiled[0] / bare[0], tiled[1] / bare[1]))
        within.append((tiled[0] / timed.wall, tiled[1] / timed.cpu))
    return {
        "tiles": len(positions),
        "separate_wall": min(wall for wall, _ in separate),
        "separate_cpu": min(cpu for _, cpu in separate),
        "within_wall": min(wall for wall, _ in within),
        "within_cpu": min(cpu for _, cpu in within),
        "predict_seconds": tiled[0],
    }


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
    predictor = pointwise_predictor() if pointwise else small_predictor(8)
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
    """(c): peak-RSS growth of predicting a size × size image, measured in a fresh interpreter."""
    command = [sys.executable, __file__, "--child-memory", str(size), "--threads", str(torch.get_num_threads())]
    command += ["--pointwise"] if pointwise else []
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def unet_resnet18_speed(iterations: int) -> dict[str, float]:
    """(record): images/s of smp Unet-ResNet18 at 256², batch 1, NCHW and channels_last, interleaved."""
    import segmentation_models_pytorch as smp

    model = smp.Unet(encoder_name="resnet18", encoder_weights=None, classes=NUM_CLASSES).eval()
    image = torch.rand(1, 3, 256, 256)
    layouts = {"eager": (model, image), "channels_last": (None, image.contiguous(memory_format=torch.channels_last))}
    fast = smp.Unet(encoder_name="resnet18", encoder_weights=None, classes=NUM_CLASSES).eval()
    fast.load_state_dict(model.state_dict())
    layouts["channels_last"] = (fast.to(memory_format=torch.channels_last), layouts["channels_last"][1])
    seconds = {name: [] for name in layouts}  # type: dict[str, list[float]]
    with torch.inference_mode():
        for network, batch in layouts.values():
            network(batch)  # warm-up
        for _ in range(iterations):
            for name, (network, batch) in layouts.items():
                start = time.perf_counter()
                network(batch)
                seconds[name].append(time.perf_counter() - start)
    # the median of single passes resists a neighbour's burst better than a mean
    return {name: 1 / float(np.median(values)) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
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

    quick = arguments.quick
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")

    size = 512 if quick else 2048
    overhead = tiling_overhead(size, repeats=1 if quick else 2)
    print(
        f"(a) {size}² image, {overhead['tiles']} tiles of 256² (overlap 0.5, batch 4), unet-small width 16, "
        f"predict {overhead['predict_seconds']:.0f} s; tiled / bare forward passes (target <= 1.15):\n"
        f"    measured separately: wall {overhead['separate_wall']:.3f}, CPU {overhead['separate_cpu']:.3f}; "
        f"within one predict: wall {overhead['within_wall']:.3f}, CPU {overhead['within_cpu']:.3f}"
    )

    small, large = (512, 1024) if quick else (1024, 4096)
    low, high = peak_memory(small), peak_memory(large)
    mib = 1 / 2**20
    print(
        f"(c) peak RSS growth while predicting (unet-small width 8, tiles 256², batch 4, K={NUM_CLASSES}):\n"
        f"    {small}²: {low['growth'] * mib:.0f} MiB (canvas {low['canvas'] * mib:.0f} MiB); "
        f"{large}²: {high['growth'] * mib:.0f} MiB (canvas {high['canvas'] * mib:.0f} MiB)\n"
        f"    growth ratio {high['growth'] / max(low['growth'], 1):.1f} for a canvas ratio "
        f"{high['canvas'] / low['canvas']:.0f}; beyond the canvas: {(low['growth'] - low['canvas']) * mib:.0f} "
        f"and {(high['growth'] - high['canvas']) * mib:.0f} MiB (tile batches, constant in the image size)"
    )

    huge = 2048 if quick else 10_000
    biggest = peak_memory(huge, pointwise=True)
    tiles = len(tile_grid(huge, huge, pointwise_predictor().tile_size, pointwise_predictor().overlap))
    print(
        f"    {huge}² with a 1×1-convolution network ({tiles} "
        f"tiles, {biggest['seconds']:.0f} s): growth {biggest['growth'] * mib:.0f} MiB for a canvas of "
        f"{biggest['canvas'] * mib:.0f} MiB"
    )

    speed = unet_resnet18_speed(5 if quick else 20)
    print(
        f"(record) smp Unet-ResNet18 256², batch 1: eager {speed['eager']:.1f} img/s, "
        f"channels_last {speed['channels_last']:.1f} img/s ({speed['channels_last'] / speed['eager']:.2f}×)"
    )


if __name__ == "__main__":
    main()
