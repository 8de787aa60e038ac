"""Training-step throughput: pixelwise's ``Trainer.train_step`` against a bare PyTorch loop, in one run.

Both sides get the same model (same initial weights), the same batch, cross-entropy with ignore_index and
AdamW with the same poly schedule. Rounds alternate between the sides, so that a neighbour's load on a
shared machine hits both alike; the ratio printed is the median over rounds of (pixelwise images/s) /
(bare images/s). Target: >= 0.9 (the loop adds no more than 10% over hand-written PyTorch).

Three comparisons:

- ``same settings``: both in float32, contiguous (NCHW) memory: the pure overhead of the loop.
- ``channels_last``: pixelwise with channels_last (its default) against bare NCHW.
- with ``--amp``, also pixelwise with bfloat16 autocast and channels_last against bare NCHW.

    .venv/bin/python bench/train_step.py                # defaults: unet-small, batch 8 at 128², 3 channels
    .venv/bin/python bench/train_step.py --size 256 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from pixelwise.data.classes import ClassSpec
from pixelwise.models.registry import create_model
from pixelwise.train.config import TrainConfig
from pixelwise.train.trainer import build_trainer, learning_rate_factor


def bare_step_factory(
    model: torch.nn.Module, config: TrainConfig, total: int
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The loop one would write by hand: forward, CE, backward, AdamW step, scheduler step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(config, total))

    def step(images: torch.Tensor, masks: torch.Tensor) -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), masks, ignore_index=255)
        loss.backward()
        optimizer.step()
        scheduler.step()

    return step


def images_per_second(step: Callable[[], object], steps: int, batch: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="steps per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    parser.add_argument("--amp", action="store_true", help="also measure bfloat16 autocast")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    classes = ClassSpec.default(args.classes)
    images = torch.randn(args.batch_size, args.channels, args.size, args.size)
    masks = torch.randint(0, args.classes, (args.batch_size, args.size, args.size))
    masks[:, :4, :4] = 255  # a few ignored pixels, as real crops have
    total = args.rounds * (args.steps + 1) * 4
    reference = create_model(args.model, num_classes=args.classes, in_channels=args.channels)

    def pixelwise_side(**settings: object) -> Callable[[], object]:
        config = TrainConfig(model=args.model, lr=1e-3, weight_decay=1e-4, **settings)  # type: ignore[arg-type]
        trainer = build_trainer(config, classes=classes, in_channels=args.channels, total_iterations=total)
        trainer.raw_model.load_state_dict(reference.state_dict())
        return lambda: trainer.train_step(images, masks)

    def bare_side() -> Callable[[], object]:
        model = copy.deepcopy(reference)
        step = bare_step_factory(model, TrainConfig(lr=1e-3, weight_decay=1e-4), total)
        return lambda: step(images, masks)

    cases = {
        "same settings (fp32, NCHW)": pixelwise_side(channels_last=False),
        "pixelwise channels_last": pixelwise_side(channels_last=True),
    }
    if args.amp:
        cases["pixelwise bf16 autocast + channels_last"] = pixelwise_side(channels_last=True, amp=True)
    bare = bare_side()
    for step in (*cases.values(), bare):  # warm-up: allocator, oneDNN kernels
        step()

    ratios: dict[str, list[float]] = {name: [] for name in cases}
    speeds: dict[str, list[float]] = {name: [] for name in (*cases, "bare PyTorch (fp32, NCHW)")}
    for _ in range(args.rounds):
        for name, step in cases.items():
            bare_speed = images_per_second(bare, args.steps, args.batch_size)
            speed = images_per_second(step, args.steps, args.batch_size)
            ratios[name].append(speed / bare_speed)
            speeds[name].append(speed)
            speeds["bare PyTorch (fp32, NCHW)"].append(bare_speed)

    print(
        f"{args.model}, batch {args.batch_size} x {args.channels} x {args.size}², {args.classes} classes, "
        f"AdamW + CE, {torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps per side"
    )
    for name, values in speeds.items():
        print(f"  {name:42s} {statistics.median(values):7.2f} images/s (median)")
    for name, values in ratios.items():
        spread = f"{min(values):.3f}..{max(values):.3f}"
        print(f"  ratio {name:36s} {statistics.median(values):.3f}  (rounds {spread})")


if __name__ == "__main__":
    main()
