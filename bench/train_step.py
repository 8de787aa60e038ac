"""Training-step throughput: pixelwise's ``Trainer.train_step`` against a bare PyTorch loop, in one run.

Both sides get the same model (same initial weights), the same batch, cross-entropy with ignore_index and
AdamW with the same poly schedule. Rounds alternate between the sides, so that a neighbour's load on a
shared machine hits both alike; the ratio printed is the median over rounds of (pixelwise images/s) /
(bare images/s). Target: >= 0.95 (the loop adds no more than 5 % over hand-written PyTorch).

Comparisons, each side in the same precision and memory layout:

- ``fp32``: float32, contiguous (NCHW) memory: the pure overhead of the loop.
- ``amp``: float16 autocast + gradient scaler on CUDA; bfloat16 autocast on a CPU with bf16 instructions
  (``pixelwise.hardware.cpu_has_bf16``; elsewhere ``--amp`` trains in float32, so there is nothing to time).
- for the record, pixelwise's defaults (channels_last) against the bare fp32 NCHW loop.

On CUDA each timed block ends with ``torch.cuda.synchronize``: the clock reads when the GPU is done.

    .venv/bin/python bench/train_step.py --threads 1                    # unet-small, batch 8 at 128², CPU
    .venv/bin/python bench/train_step.py --device cuda --model unet --encoder resnet34 --batch-size 16 --size 512
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from pixelwise.data.classes import ClassSpec
from pixelwise.hardware import autocast_dtype
from pixelwise.models.registry import create_model
from pixelwise.train.config import TrainConfig
from pixelwise.train.distributed import choose_device
from pixelwise.train.optimization import learning_rate_factor
from pixelwise.train.trainer import build_trainer


def bare_step_factory(
    model: torch.nn.Module, config: TrainConfig, total: int, device: torch.device, dtype: torch.dtype | None
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The loop one would write by hand: forward (under autocast for AMP), CE, backward (scaled for float16),
    AdamW step, scheduler step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(config, total))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

    def step(images: torch.Tensor, masks: torch.Tensor) -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(images), masks, ignore_index=255)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

    return step


def images_per_second(step: Callable[[], object], steps: int, batch: int, device: torch.device) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    parser.add_argument("--model", default="unet-small")
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="steps per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)

    torch.manual_seed(0)
    classes = ClassSpec.default(args.classes)
    images = torch.randn(args.batch_size, args.channels, args.size, args.size, device=device)
    masks = torch.randint(0, args.classes, (args.batch_size, args.size, args.size), device=device)
    masks[:, :4, :4] = 255  # a few ignored pixels, as real crops have
    total = args.rounds * (args.steps + 1) * 8
    encoder = {} if args.encoder is None else {"encoder": args.encoder}
    reference = create_model(args.model, num_classes=args.classes, in_channels=args.channels, **encoder)

    def pixelwise_side(**settings: Any) -> Callable[[], object]:
        config = TrainConfig(model=args.model, encoder=args.encoder, lr=1e-3, weight_decay=1e-4, device=str(device))
        trainer = build_trainer(
            config.replace(**settings), classes=classes, in_channels=args.channels, total_iterations=total
        )
        trainer.raw_model.load_state_dict(reference.state_dict())
        return lambda: trainer.train_step(images, masks)

    def bare_side(dtype: torch.dtype | None) -> Callable[[], object]:
        model = copy.deepcopy(reference).to(device)
        step = bare_step_factory(model, TrainConfig(lr=1e-3, weight_decay=1e-4), total, device, dtype)
        return lambda: step(images, masks)

    # name -> (pixelwise step, the bare step it is measured against)
    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "fp32 (NCHW)": (pixelwise_side(channels_last=False), bare_side(None)),
    }
    amp = autocast_dtype(device)
    if amp is not None:
        pairs[f"amp ({str(amp).removeprefix('torch.')}, NCHW)"] = (
            pixelwise_side(channels_last=False, amp=True),
            bare_side(amp),
        )
    else:
        print("amp: not measured, this CPU has no bfloat16 instructions (pixelwise trains in float32 there)")
    pairs["defaults (channels_last) vs bare fp32"] = (pixelwise_side(), pairs["fp32 (NCHW)"][1])
    for ours, bare in pairs.values():  # warm-up: allocator, kernels, cuDNN's choices
        ours(), bare()

    ratios: dict[str, list[float]] = {name: [] for name in pairs}
    speeds: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, (ours, bare) in pairs.items():
            bare_speed = images_per_second(bare, args.steps, args.batch_size, device)
            speed = images_per_second(ours, args.steps, args.batch_size, device)
            ratios[name].append(speed / bare_speed)
            speeds.setdefault(f"pixelwise {name}", []).append(speed)
            speeds.setdefault(f"bare, for {name}", []).append(bare_speed)

    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{args.model}{'-' + args.encoder if args.encoder else ''}, batch {args.batch_size} x {args.channels} x "
        f"{args.size}², {args.classes} classes, AdamW + CE, device {device}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds x {args.steps} steps per side, load average {load}"
    )
    for name, values in speeds.items():
        print(f"  {name:60s} {statistics.median(values):8.2f} images/s (median)")
    for name, values in ratios.items():
        spread = f"{min(values):.3f}..{max(values):.3f}"
        print(f"  ratio {name:54s} {statistics.median(values):.3f}  (rounds {spread})")


if __name__ == "__main__":
    main()
