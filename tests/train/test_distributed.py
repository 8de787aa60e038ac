"""The distributed seam: its one-process answers, the sampler's split, torchrun's environment read right.

Several processes for real: tests/train/test_torchrun.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pixelwise.errors import PixelwiseError
from pixelwise.train import distributed
from pixelwise.train.config import TrainConfig
from pixelwise.train.distributed import (
    broadcast_from_main,
    gather,
    is_main_process,
    iterations_per_epoch,
    make_loader,
    on_main_process,
    process_device,
    processes,
    reduce_mean,
    share_of,
    sum_over_processes,
    wrap_for_training,
)

from .conftest import TinyData

FAST = TrainConfig(epochs=1, batch_size=4, crop_size=16, lr=3e-3, patience=0, discriminator_base_channels=8)


def test_one_process_is_the_main_one_and_shares_nothing() -> None:
    assert is_main_process() and distributed.world_size() == 1 and distributed.rank() == 0
    # NaN-only numbers have count 0 and are left out
    assert reduce_mean({"loss": 1.5, "semi_loss": 0.0}, {"loss": 3, "semi_loss": 0}) == {"loss": 0.5}
    record = {"epoch": 1}
    assert broadcast_from_main(record) is record
    assert gather(record) == [record]
    assert on_main_process(lambda: 42) == 42
    matrix = np.eye(2, dtype=np.int64)
    assert sum_over_processes(matrix)[0] is matrix
    data = list(range(5))
    assert share_of(data) is data  # type: ignore[arg-type]
    module = nn.Linear(2, 2)
    assert wrap_for_training(module) is module
    with processes("cpu", timeout=1) as device:  # without torchrun: joins nothing
        assert device == torch.device("cpu") and not torch.distributed.is_initialized()


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert process_device("cpu") == torch.device("cpu")
    assert process_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(PixelwiseError, match=f"--device {name}: torch sees no CUDA GPU"):
                process_device(name)
    # under torchrun: one GPU per process, the one of its LOCAL_RANK
    for name, value in {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    assert distributed.launched() and distributed.rank() == 3 and distributed.world_size() == 4
    assert not is_main_process()
    assert process_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert process_device("auto") == process_device("cuda") == torch.device("cuda", 1)
    with pytest.raises(PixelwiseError, match="under torchrun each process takes the GPU of its LOCAL_RANK"):
        process_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(PixelwiseError, match="LOCAL_RANK 1 has no GPU of its own: torch sees 1"):
        process_device("cuda")


def test_the_loader_order_depends_only_on_seed_epoch_and_stream() -> None:
    data = list(range(20))

    def order(**key: int) -> list[int]:
        loader = make_loader(data, batch_size=4, num_workers=0, **key)  # type: ignore[arg-type]
        return torch.cat(list(loader)).tolist()

    first = order(seed=1, epoch=0, stream=0)
    assert sorted(first) == data
    assert order(seed=1, epoch=0, stream=0) == first
    assert order(seed=1, epoch=1, stream=0) != first
    assert order(seed=1, epoch=0, stream=1) != first
    assert order(seed=2, epoch=0, stream=0) != first
    # a second pass over the same loader (a small set cycled within an epoch) is a new order
    loader = make_loader(data, batch_size=4, seed=1, epoch=0, stream=0, num_workers=0)  # type: ignore[arg-type]
    passes = [torch.cat(list(loader)).tolist() for _ in range(2)]
    assert passes[0] == first and passes[1] != first and sorted(passes[1]) == data
    # one pass yields the last, partial batch too, unless it would hold one image (BatchNorm needs two)
    for count, batches in ((6, 2), (5, 1), (3, 1), (1, 1), (12, 3)):
        loader = make_loader(list(range(count)), batch_size=4, seed=0, epoch=0, stream=0, num_workers=0)  # type: ignore[arg-type]
        assert len(loader) == batches == iterations_per_epoch(0, count, 4), count


def test_processes_split_the_order_one_process_would_take(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch ``b`` of one process with batch 8 is the union of batch ``b`` of two processes with batch 4."""
    data = list(range(16))
    alone = [batch.tolist() for batch in make_loader(data, batch_size=8, seed=5, epoch=2, stream=0, num_workers=0)]  # type: ignore[arg-type]
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        monkeypatch.setattr(distributed, "world_size", lambda: 2)
        loader = make_loader(data, batch_size=4, seed=5, epoch=2, stream=0, num_workers=0)  # type: ignore[arg-type]
        shares.append([batch.tolist() for batch in loader])
        assert iterations_per_epoch(0, len(data), 4) == 2 == len(loader)
        assert iterations_per_epoch(5, len(data), 4) == 3  # a requested count is for one process: ceil(5 / 2)
    for batch, first, second in zip(alone, *shares, strict=True):
        assert sorted(batch) == sorted(first + second)


def test_each_process_augments_with_a_stream_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = []
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        seeds.append(distributed.process_seed(7, 0))
        loader = make_loader(list(range(8)), batch_size=4, seed=7, epoch=0, stream=0, num_workers=0)  # type: ignore[arg-type]
        seeds.append(int(loader.generator.initial_seed()))  # what worker processes seed augmentation from
    assert len(set(seeds)) == 4


@pytest.fixture
def torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables torchrun sets, for a world of this one process (a real gloo group, in this process)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    variables = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}
    for name, value in {**variables, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")


def test_one_process_under_torchrun_trains_bitwise_like_one_without(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData, torchrun_environment: None
) -> None:
    """Every collective of the loop runs (DDP for S and D, sampler, sums, broadcasts, gathers), in a world of
    one: the run must be the one without torchrun, bit for bit, and the group left afterwards."""
    from pixelwise.checkpoint import load_checkpoint
    from pixelwise.train.checkpoint import ResumeState
    from pixelwise.train.loop import fit

    config = FAST.replace(epochs=2, adversarial_weight=0.01, semi_weight=0.1, labeled_fraction=0.5)
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    train_logger = logging.getLogger("pixelwise.train")
    level = train_logger.level
    train_logger.addHandler(handler)
    train_logger.setLevel(logging.INFO)
    try:
        joined = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "joined", progress=False)
    finally:
        train_logger.removeHandler(handler)
        train_logger.setLevel(level)
    assert messages[0] == "torchrun: training on 1 process (world size 1, gloo)"
    assert not torch.distributed.is_initialized()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RANK")  # no longer launched by torchrun: nothing to join
        alone = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "alone", progress=False)
    first, second = (load_checkpoint(run.last_checkpoint) for run in (joined, alone))
    resumes = [ResumeState.from_checkpoint(checkpoint) for checkpoint in (first, second)]
    for part in ("state_dict", "discriminator"):
        flat = first.state_dict if part == "state_dict" else resumes[0].discriminator["state_dict"]  # type: ignore[index]
        other = second.state_dict if part == "state_dict" else resumes[1].discriminator["state_dict"]  # type: ignore[index]
        assert all(torch.equal(tensor, other[name]) for name, tensor in flat.items()), part
    assert [record["train_loss"] for record in joined.history] == [record["train_loss"] for record in alone.history]
    assert resumes[0].rng[0]["torch"].equal(resumes[1].rng[0]["torch"])  # type: ignore[index]


def test_a_lost_neighbour_becomes_one_error(torchrun_environment: None) -> None:
    with pytest.raises(PixelwiseError) as caught, processes("cpu", timeout=5):
        assert torch.distributed.is_initialized()
        raise RuntimeError(
            "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer. "
            "This is typically caused by a remote worker hanging"
        )
    assert str(caught.value) == (
        "process 0 of 1 lost the others (Read error: Connection reset by peer): another process failed or hung, see its "
        "output; a process waits at most process_timeout = 5 s"
    )
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="not about the others"), processes("cpu", timeout=5):
        raise RuntimeError("not about the others")


def test_parameters_a_forward_leaves_unused_are_found_without_moving_anything() -> None:
    """DDP waits for gradients of every parameter unless told which ones a forward never uses."""

    class PartlyUsed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.norm, self.spare = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 1)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.norm(self.used(images))

    module = PartlyUsed().train()
    statistics = module.norm.running_mean.clone()
    assert distributed._unused_parameters(module, torch.rand(1, 1, 4, 4)) == ["spare.weight", "spare.bias"]
    assert module.training and torch.equal(module.norm.running_mean, statistics)
