"""What training needs to know about other processes: one process, or several under ``torchrun`` (DDP).

These helpers are the only places of the training code that ask: which process logs and writes files, how
per-process numbers are added up, which device a process uses, how the sampler splits the data, and how a
network is wrapped for training. With one process each is the identity (or the obvious choice), so the loop
reads the same either way.

Under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``)
``processes`` joins the others: NCCL with one GPU per process (``cuda:LOCAL_RANK``), gloo on CPUs.

- Data: every process draws the same shuffled order (``DistributedSampler``, keyed by seed, epoch and pass)
  and takes every ``world_size``-th index, so the union of one step's batches is the batch one process
  with ``batch_size × world_size`` would take; augmentation runs on a random stream of each process's own.
- Gradients: ``DistributedDataParallel`` averages them in ``backward``; BatchNorm becomes SyncBatchNorm on
  CUDA (torch has no CPU version: on CPUs each process normalises over its own batch).
- Validation: every process scores its own contiguous share of the images with the raw network (no
  collective inside) and the counts behind the metrics are summed over processes, so each image counts
  once and the metrics equal one process's.
- Files: only the main process (rank 0) writes; what it decides (the epoch's record, early stopping) is
  broadcast so that every process takes the same path.
- Failure: a process that waits longer than ``timeout`` for the others fails with a ``PixelwiseError``
  saying so (a neighbour died or hung); ``torchrun`` then stops the remaining processes of its machine.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import logging
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import pixelwise.device
from pixelwise.errors import PixelwiseError
from pixelwise.train.data import SubsetView, seed_worker

if TYPE_CHECKING:
    from pixelwise.metrics import Evaluator
    from pixelwise.train.data import Samples

T = TypeVar("T")

logger = logging.getLogger(__name__)

# what torchrun (and any launcher following the env:// convention) puts in each process's environment
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True in a process started by ``torchrun`` (its environment names the rank and the rendezvous)."""
    return all(name in os.environ for name in LAUNCH_VARIABLES)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's number among all processes, 0 .. world_size - 1 (0 without torchrun)."""
    if _distributed():
        return torch.distributed.get_rank()
    return int(os.environ["RANK"]) if launched() else 0


def world_size() -> int:
    """How many processes train together (1 without torchrun)."""
    if _distributed():
        return torch.distributed.get_world_size()
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def is_main_process() -> bool:
    """True on the process that logs, shows progress and writes files (rank 0; the only one without DDP).

    Known before the processes have joined (from torchrun's environment), so the command line can quiet the
    other processes from the start."""
    return rank() == 0


# --- joining the other processes -------------------------------------------------------------------------


def process_device(name: str) -> torch.device:
    """``pixelwise.device.choose_device``'s rule; under torchrun ``auto`` and ``cuda`` mean this process's
    GPU, ``cuda:LOCAL_RANK``."""
    device = pixelwise.device.choose_device(name)
    if not launched() or device.type == "cpu":
        return device
    if name.strip().lower() not in ("auto", "cuda"):
        raise PixelwiseError(
            f"--device {name}: under torchrun each process takes the GPU of its LOCAL_RANK; "
            "give --device cuda (or auto), and choose the GPUs with CUDA_VISIBLE_DEVICES"
        )
    local_rank, count = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
    if local_rank >= count:
        raise PixelwiseError(
            f"process with LOCAL_RANK {local_rank} has no GPU of its own: torch sees {count}; "
            f"start at most {count} processes per machine (--nproc-per-node) or train with --device cpu"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def processes(device_name: str, *, timeout: float) -> Iterator[torch.device]:
    """Within the block, this process has joined the others (under torchrun) and trains on the device given.

    Without torchrun, or when the caller has already made a process group, nothing is joined (nor left).
    A collective that waits more than ``timeout`` seconds, or a neighbour that drops its connection, becomes
    one ``PixelwiseError`` on this process instead of a hang or a transport's traceback.
    """
    device = process_device(device_name)
    if not launched() or _distributed():
        yield device
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # object collectives (broadcast_object_list) use the current device
    torch.distributed.init_process_group(
        backend,
        timeout=datetime.timedelta(seconds=timeout),
        device_id=device if device.type == "cuda" else None,
    )
    try:
        if is_main_process():
            world, here = world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))
            processes_here = f"{here} process{'' if here == 1 else 'es'}{'' if here == world else ' per machine'}"
            logger.info("torchrun: training on %s (world size %d, %s)", processes_here, world, backend)
        yield device
    except RuntimeError as error:
        if not _lost_contact(error):
            raise
        # gloo's messages: "[.../pair.cc:545] Read error ...: Connection reset by peer. This is typically ..."
        message = (str(error).strip() or type(error).__name__).splitlines()[0]
        cause = re.sub(r"^\[[^\]]*\]\s*", "", message).split(". ")[0]
        raise PixelwiseError(
            f"process {rank()} of {world_size()} lost the others ({cause}): another process failed or "
            f"hung, see its output; a process waits at most process_timeout = {timeout:g} s"
        ) from error
    finally:
        torch.distributed.destroy_process_group()


def _lost_contact(error: RuntimeError) -> bool:
    """A communication failure (gloo and NCCL report them as RuntimeErrors that name the transport)."""
    text = str(error)
    return isinstance(error, torch.distributed.DistError) or "gloo" in text or "NCCL" in text


# --- sharing numbers and decisions -----------------------------------------------------------------------


def _collective_device() -> torch.device:
    """Where tensors for a collective must live: NCCL only moves CUDA tensors, gloo CPU ones."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def reduce_mean(sums: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
    """``sums[key] / counts[key]`` over every process's steps; keys counted nowhere are left out.

    Processes may hold different keys (a number that was NaN in every step of one process): the union of
    the keys is reduced, so no process waits for a tensor of another length.
    """
    if _distributed():
        gathered: list[list[str]] = [[] for _ in range(world_size())]
        torch.distributed.all_gather_object(gathered, sorted(sums))
        keys = sorted(set().union(*gathered))
        totals = [[sums.get(key, 0.0) for key in keys], [counts.get(key, 0) for key in keys]]
        summed = torch.tensor(totals, dtype=torch.float64, device=_collective_device())
        torch.distributed.all_reduce(summed)
        sums = dict(zip(keys, summed[0].tolist(), strict=True))
        counts = dict(zip(keys, (int(count) for count in summed[1].tolist()), strict=True))
    return {key: sums[key] / counts[key] for key in sums if counts.get(key, 0) > 0}


def sum_over_processes(*arrays: np.ndarray) -> list[np.ndarray]:
    """Each array summed elementwise over all processes (the arrays themselves with one process)."""
    if not _distributed():
        return list(arrays)
    summed = []
    for array in arrays:
        tensor = torch.tensor(array, device=_collective_device())  # a copy: the caller's array stays as it was
        torch.distributed.all_reduce(tensor)
        summed.append(tensor.cpu().numpy().astype(array.dtype, copy=False))
    return summed


def whole_set_result(evaluator: Evaluator, losses: list[float]) -> dict[str, Any]:
    """``evaluator.result()`` (as its dict) plus the mean ``loss`` over the whole validation set, from every process's
    share: the counts behind the metrics (confusion matrix, boundary counts, images) and the losses are
    summed over processes first, so each image counts once and every process gets the same result."""
    matrix, boundary, images, loss = sum_over_processes(
        evaluator.confusion.matrix,
        evaluator.boundary.counts,
        np.array([evaluator.num_images], np.int64),
        np.array([math.fsum(losses), len(losses)], np.float64),
    )
    evaluator.confusion.matrix, evaluator.boundary.counts, evaluator.num_images = matrix, boundary, int(images[0])
    loss_sum, loss_count = loss.tolist()
    return {**evaluator.result().to_dict(), "loss": loss_sum / loss_count if loss_count else float("nan")}


def share_of(dataset: Samples) -> Samples:
    """This process's contiguous share of ``dataset`` for validation: every item in exactly one share (no
    padding, unlike DistributedSampler's, which would count some images twice)."""
    if not _distributed():
        return dataset
    count, parts, part = len(dataset), world_size(), rank()
    return SubsetView(dataset, range(part * count // parts, (part + 1) * count // parts))


def broadcast_from_main(value: T) -> T:
    """The main process's ``value`` on every process (a decision taken once, e.g. whether to stop)."""
    if not _distributed():
        return value
    box = [_packed(value)]
    torch.distributed.broadcast_object_list(box, src=0)
    return _unpacked(box[0])


def gather(value: T) -> list[T]:
    """Every process's ``value``, in rank order, on every process (``[value]`` with one process)."""
    if not _distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, _packed(value))
    return [_unpacked(packed) for packed in gathered]


def _packed(value: Any) -> bytes:
    """``value`` as ``torch.save`` writes it. The object collectives pickle, and a pickled uint32 tensor (the
    form numpy's RNG state takes in ``rng_state``) does not load back in torch 2.14 ("UntypedStorage has no
    attribute dtype"); ``torch.save`` round-trips every dtype."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _unpacked(packed: bytes) -> Any:
    # from our own processes of the same run, so not restricted to weights
    return torch.load(io.BytesIO(packed), map_location="cpu", weights_only=False)


def on_main_process(function: Callable[[], T]) -> T:
    """``function()`` run by the main process only, its result on every process.

    A ``PixelwiseError`` it raises is raised on every process, so that none waits for a process that stopped
    (e.g. the check of the run folder, or reading ``last.pt``, which every process then has the same of).
    """
    if not _distributed():
        return function()
    outcome: tuple[T | None, str | None] = (None, None)
    if is_main_process():
        try:
            outcome = (function(), None)
        except PixelwiseError as error:
            outcome = (None, str(error))
    result, message = broadcast_from_main(outcome)
    if message is not None:
        raise PixelwiseError(message)
    return result  # type: ignore[return-value]


def barrier() -> None:
    """Wait until every process gets here (nothing with one process)."""
    if _distributed():
        torch.distributed.barrier()


def share_buffers_of_main(module: nn.Module) -> None:
    """Give every process the main process's buffers (BatchNorm's running statistics).

    DDP broadcasts them at the start of each forward, and the forward then updates each process's copy with
    its own batch: after the last step they differ slightly. Validation and the checkpoint must see one.
    """
    if not _distributed():
        return
    device = _collective_device()
    for buffer in module.buffers():
        moved = buffer.data.to(device)
        torch.distributed.broadcast(moved, src=0)
        buffer.data.copy_(moved)


# --- the training network and the data -------------------------------------------------------------------


def wrap_for_training(module: nn.Module, example: torch.Tensor | None = None) -> nn.Module:
    """The network the training step calls: ``module`` itself in one process, else
    ``DistributedDataParallel(module)``, which averages gradients in ``backward`` (with SyncBatchNorm on CUDA).

    The Trainer keeps ``module`` (the raw network) beside it for validation, the model spec and checkpoints,
    so saved weights never carry a ``module.`` prefix. The conversion to SyncBatchNorm replaces the layers
    inside ``module`` (the same parameter objects: the optimizer built on them stays valid).

    ``example``: an input of ``module``, to find parameters its forward leaves unused (an smp encoder
    deeper than its ``encoder_depth`` uses): DDP must be told of them, or it waits for their gradients.
    """
    if not _distributed():
        return module
    device = next(module.parameters()).device
    if device.type == "cuda":
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        assert converted is module, "only a bare BatchNorm layer is replaced whole"
    unused = [] if example is None else _unused_parameters(module, example)
    if unused and is_main_process():
        logger.info("DDP: %d parameter tensors are not used by the forward (e.g. %s)", len(unused), unused[0])
    return nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=bool(unused)
    )


def _unused_parameters(module: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the trainable parameters that get no gradient from ``module(example)``.

    In eval mode, so that running statistics stay as they are; asking costs one small forward and backward.
    """
    named = [(name, parameter) for name, parameter in module.named_parameters() if parameter.requires_grad]
    training = module.training
    module.eval()
    try:
        output = module(example)
        gradients = torch.autograd.grad(output.float().sum(), [p for _, p in named], allow_unused=True)
    finally:
        module.train(training)
    return [name for (name, _), gradient in zip(named, gradients, strict=True) if gradient is None]


def process_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for this process's own random stream, from ``seed``, ``keys`` and the rank.

    >>> process_seed(0) == process_seed(0), process_seed(0) == process_seed(1), process_seed(0) == process_seed(0, 0)
    (True, False, False)
    """
    return _derived_seed(seed, _PROCESS_STREAM, rank(), *keys)


# what a derived seed is for, so that two purposes never share one
_PROCESS_STREAM, _SHARED_ORDER = 1, 2


def _derived_seed(seed: int, *keys: int) -> int:
    # keys as SeedSequence's spawn key, which tells (0,) from (0, 0) where its entropy list would not
    return int(np.random.SeedSequence(seed, spawn_key=keys).generate_state(1)[0])


class _EveryPassShuffled(DistributedSampler[int]):
    """torch's DistributedSampler, with a new order for every pass over it (``_forever`` cycles a small set
    within an epoch): pass ``p`` of epoch ``e`` shuffles with the key (seed, stream, e, p), the same key
    on every process, so the processes split one order between them."""

    def __init__(self, dataset: Dataset[Any], *, seed: int, stream: int, epoch: int) -> None:
        super().__init__(dataset, num_replicas=world_size(), rank=rank(), shuffle=True, seed=0, drop_last=False)
        self.key = (seed, stream, epoch)
        self.passes = 0

    def __iter__(self) -> Iterator[int]:
        seed, stream, epoch = self.key
        self.set_epoch(_derived_seed(seed, _SHARED_ORDER, stream, epoch, self.passes))
        self.passes += 1
        return super().__iter__()


def make_loader(
    dataset: Dataset[Any], *, batch_size: int, seed: int, epoch: int, stream: int, num_workers: int
) -> DataLoader[Any]:
    """A shuffling loader of this process's share, whose order depends only on (seed, epoch, stream).

    ``batch_size`` is per process. A fresh sampler per epoch makes epoch ``e`` the same whether the run got
    there straight or through a resume. Worker processes (``num_workers``) seed their augmentation from
    the loader's generator, which differs per process.
    """
    sampler = _EveryPassShuffled(dataset, seed=seed, stream=stream, epoch=epoch)
    generator = torch.Generator()
    generator.manual_seed(process_seed(seed, epoch, stream))
    # one pass includes the last, partial batch, unless it would hold a single image: BatchNorm cannot
    # normalise one sample in the heads that pool to 1 x 1 (DeepLabV3, PSPNet, PAN, UPerNet)
    drop_last = sampler.num_samples > batch_size and sampler.num_samples % batch_size == 1
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        worker_init_fn=seed_worker if num_workers else None,
        generator=generator,
        persistent_workers=False,
    )


def iterations_per_epoch(requested: int, labeled: int, batch_size: int) -> int:
    """Steps per epoch of each process: ``requested`` (the count for one process) or one pass over the
    ``labeled`` images, divided between the processes, so that an epoch sees as many images either way.

    A pass counts its last, partial batch (12 images at 8 a batch are 2 steps, not 1), as ``make_loader``
    yields it, except a last batch of one image, which the loader drops.

    >>> iterations_per_epoch(0, 100, 8), iterations_per_epoch(0, 12, 8), iterations_per_epoch(0, 9, 8)
    (13, 2, 1)
    >>> iterations_per_epoch(10, 100, 8), iterations_per_epoch(0, 3, 8)
    (10, 1)
    """
    if requested:
        return max(-(-requested // world_size()), 1)
    per_process = -(-labeled // world_size())
    full, rest = divmod(per_process, batch_size)
    return max(full + (rest >= 2), 1)
