"""What training needs to know about other processes: today one process, under ``torchrun`` several.

These helpers are the only places of the training code that ask: which process logs and writes files, how
per-process numbers are averaged, which device a process uses, how the sampler splits the data, and how a
network is wrapped for training. With one process each is the identity (or the obvious choice), so the
loop reads the same either way; multi-process training (DDP) changes only this file.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from pixelwise.errors import PixelwiseError
from pixelwise.train.data import seed_worker

T = TypeVar("T")


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def is_main_process() -> bool:
    """True on the process that logs, shows progress and writes files (rank 0; the only one without DDP)."""
    return not _distributed() or torch.distributed.get_rank() == 0


def reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average per-process numbers over all processes (identity with one process)."""
    if not _distributed() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    tensor /= torch.distributed.get_world_size()
    return dict(zip(keys, tensor.tolist(), strict=True))


def broadcast_from_main(value: T) -> T:
    """The main process's ``value`` on every process (validation runs on the main process only)."""
    if not _distributed():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def choose_device(name: str) -> torch.device:
    """``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PixelwiseError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def wrap_for_training(module: nn.Module) -> nn.Module:
    """The network the training step calls: ``module`` itself in one process.

    Under torchrun this becomes ``DistributedDataParallel(module)``, which averages gradients in
    ``backward``. Whatever it returns, the Trainer keeps ``module`` (the raw network) beside it for
    validation, the model spec and checkpoints, so that saved weights never carry a ``module.`` prefix.
    """
    return module


def make_loader(
    dataset: Dataset[Any], *, batch_size: int, seed: int, epoch: int, stream: int, num_workers: int
) -> DataLoader[Any]:
    """A shuffling loader whose order and augmentation depend only on (seed, epoch, stream).

    A fresh generator per epoch makes epoch ``e`` the same whether the run got there straight or through a
    resume.
    """
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0]))
    # drop the last partial batch (BatchNorm dislikes tiny batches), unless that would leave no batch at all
    drop_last = len(dataset) >= batch_size  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_sampler(dataset, generator),
        drop_last=drop_last,
        num_workers=num_workers,
        worker_init_fn=seed_worker if num_workers else None,
        generator=generator,
        persistent_workers=False,
    )


def _sampler(dataset: Dataset[Any], generator: torch.Generator) -> Sampler[int]:
    """Every index in a seeded random order; under DDP a ``DistributedSampler`` with ``set_epoch(epoch)``,
    each process taking its share."""
    return RandomSampler(dataset, generator=generator)  # type: ignore[arg-type]
