"""A small training job for tests/train/test_torchrun.py, run by torchrun (or imported, for one process).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/train/torchrun_job.py OUT --batch-size 4

Everything that would make one process with batch 8 differ from two with batch 4 is switched off: no
augmentation (crops as large as the images, which are all 32²), no BatchNorm (its statistics are per
batch), plain SGD, and every image has the same number of valid pixels (the loss is a mean over them on
each process). ``--hang-at K`` makes rank 1 stop answering at its K-th step, as a hung process would;
``--die-at K`` makes it exit there, as a crashed one would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from torch import nn

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig

CONFIG = TrainConfig(
    model="unet-small",
    model_options={"width": 8, "depth": 2},
    epochs=2,
    crop_size=32,
    optimizer="sgd",
    lr=0.05,
    momentum=0.9,
    weight_decay=0.0,
    scale_range=(1.0, 1.0),
    rotation=0.0,
    horizontal_flip=False,
    color_jitter=0.0,
    patience=0,
    channels_last=False,
    device="cpu",
)


class Sample(NamedTuple):
    image: np.ndarray
    mask: np.ndarray
    image_path: Path


class Images(list[Sample]):
    """Samples with what ``fit`` reads beside them."""

    classes = ClassSpec.default(2, names=("background", "square"))
    in_channels = 1
    unlabeled_paths: tuple[Path, ...] = ()


def images(count: int, *, seed: int) -> Images:
    """``count`` 32² grey images with a bright square (class 1); one ignored pixel in each."""
    rng = np.random.default_rng(seed)
    samples = Images()
    for index in range(count):
        image = rng.normal(0.2, 0.05, (32, 32, 1)).astype(np.float32)
        mask = np.zeros((32, 32), np.uint8)
        top, left = (int(value) for value in rng.integers(0, 22, 2))
        image[top : top + 10, left : left + 10] = 0.8
        mask[top : top + 10, left : left + 10] = 1
        mask[31, 31] = 255
        samples.append(Sample(np.clip(image, 0, 1), mask, Path(f"square{index}.png")))
    return samples


def _without_batchnorm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        else:
            _without_batchnorm(child)
    return module


@contextlib.contextmanager
def networks_without_batchnorm() -> Iterator[None]:
    """``create_model`` builds its networks with every BatchNorm layer taken out, within the block."""
    from pixelwise.models import registry

    create_model = registry.create_model
    registry.create_model = lambda *args, **kwargs: _without_batchnorm(create_model(*args, **kwargs))  # type: ignore[assignment]
    try:
        yield
    finally:
        registry.create_model = create_model


def train(out: Path, *, batch_size: int, timeout: int = 60, hang_at: int = 0, die_at: int = 0) -> None:
    from pixelwise.train import distributed
    from pixelwise.train.loop import fit
    from pixelwise.train.trainer import Trainer

    if hang_at or die_at:
        step = Trainer.train_step

        def failing_step(self: Trainer, *args: object, **kwargs: object) -> object:
            if distributed.rank() == 1 and self.iteration + 1 == hang_at:
                time.sleep(600)
            if distributed.rank() == 1 and self.iteration + 1 == die_at:
                os._exit(1)
            return step(self, *args, **kwargs)  # type: ignore[arg-type]

        Trainer.train_step = failing_step  # type: ignore[assignment,method-assign]
    config = CONFIG.replace(batch_size=batch_size, process_timeout=timeout)
    with networks_without_batchnorm():
        fit(config, images(16, seed=0), images(3, seed=1), out_dir=out, progress=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--hang-at", type=int, default=0)
    parser.add_argument("--die-at", type=int, default=0)
    arguments = parser.parse_args()
    try:
        train(
            arguments.out,
            batch_size=arguments.batch_size,
            timeout=arguments.timeout,
            hang_at=arguments.hang_at,
            die_at=arguments.die_at,
        )
    except PixelwiseError as error:
        print(f"pixelwise: error: {error}", file=sys.stderr)
        sys.exit(2)
