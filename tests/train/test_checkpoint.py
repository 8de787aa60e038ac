"""What last.pt adds to a checkpoint: the ResumeState, written into the record's extra and read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pixelwise.checkpoint import Checkpoint, Normalization, load_checkpoint, save_checkpoint
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.models.registry import create_model
from pixelwise.train.checkpoint import ResumeState


def best() -> Checkpoint:
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    return Checkpoint(
        model="unet-small",
        model_options={"width": 4, "depth": 2},
        state_dict=model.state_dict(),
        classes=ClassSpec.default(2),
        normalization=Normalization((0.5,), (0.25,)),
        in_channels=1,
    )


def test_the_resume_state_round_trips_through_last_pt(tmp_path: Path) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    state = ResumeState(
        optimizer=optimizer.state_dict(),
        scheduler={"last_epoch": 3},
        iteration=12,
        rng=[{"torch": torch.get_rng_state()}],
        history=[{"epoch": 1, "train_loss": 0.5}],
        early_stopping={"best_score": 0.5, "best_epoch": 1, "bad_epochs": 0},
    )
    path = save_checkpoint(tmp_path / "last.pt", replace(best(), extra=state.to_payload()))
    # the keys last.pt has always had, in the order it has always had them (no discriminator: none written)
    assert list(torch.load(path, weights_only=True))[-8:-1] == [
        *("optimizer", "scheduler", "scaler", "iteration", "rng", "history", "early_stopping"),
    ]
    read = ResumeState.from_checkpoint(load_checkpoint(path))
    assert (read.iteration, read.history, read.early_stopping) == (12, state.history, state.early_stopping)
    assert read.discriminator is None and read.scaler == {}
    assert torch.equal(read.rng[0]["torch"], state.rng[0]["torch"])  # type: ignore[index]


def test_a_best_pt_has_nothing_to_resume_from(tmp_path: Path) -> None:
    loaded = load_checkpoint(save_checkpoint(tmp_path / "best.pt", best()))
    with pytest.raises(PixelwiseError, match=r"best\.pt: holds no training state to resume from"):
        ResumeState.from_checkpoint(loaded)
