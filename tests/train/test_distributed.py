"""The one-process answers of the distributed seam, and loaders that repeat per (seed, epoch, stream)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixelwise.errors import PixelwiseError
from pixelwise.train.distributed import (
    broadcast_from_main,
    choose_device,
    is_main_process,
    make_loader,
    reduce_mean,
    wrap_for_training,
)


def test_one_process_is_the_main_one_and_shares_nothing() -> None:
    assert is_main_process()
    assert reduce_mean({"loss": 0.5}) == {"loss": 0.5}
    record = {"epoch": 1}
    assert broadcast_from_main(record) is record
    module = nn.Linear(2, 2)
    assert wrap_for_training(module) is module


def test_device_choice() -> None:
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(PixelwiseError, match=f"device '{name}' asked for, but torch sees no CUDA GPU"):
                choose_device(name)


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
    # the last partial batch is dropped, unless it is the only one
    assert len(make_loader(list(range(6)), batch_size=4, seed=0, epoch=0, stream=0, num_workers=0)) == 1  # type: ignore[arg-type]
    assert len(make_loader(list(range(3)), batch_size=4, seed=0, epoch=0, stream=0, num_workers=0)) == 1  # type: ignore[arg-type]
