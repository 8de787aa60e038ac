"""Where a run stands: the epoch score, early-stopping counters, RNG states, and the checks before resuming."""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelwise.checkpoint import Checkpoint, Normalization
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.train import state
from pixelwise.train.checkpoint import ResumeState
from pixelwise.train.config import TrainConfig
from pixelwise.train.state import RunState, check_resume, restore_rng, rng_state, score


def test_score_prefers_validation_and_falls_back_to_the_training_loss() -> None:
    assert score({"val_miou": 0.4, "train_loss": 0.1}) == 0.4
    assert score({"train_loss": 0.3}) == -0.3
    assert score({"val_miou": math.nan}) == -math.inf
    assert score({}) == -math.inf


def test_run_state_counts_epochs_without_improvement() -> None:
    run = RunState()
    scores = [0.5, 0.52, 0.515, 0.6, 0.59, 0.58]
    improved = [run.add({"epoch": epoch, "val_miou": value}, min_delta=0.05) for epoch, value in enumerate(scores, 1)]
    # the first epoch always counts; later ones must beat the best by more than min_delta
    assert improved == [True, False, False, True, False, False]
    assert (run.best_epoch, run.best_score, run.bad_epochs) == (4, 0.6, 2)
    assert run.should_stop(2) and not run.should_stop(3) and not run.should_stop(0)
    saved = ResumeState(
        optimizer={}, scheduler={}, iteration=6, rng=[], history=run.history, early_stopping=run.early_stopping()
    )
    again = RunState.from_resume(saved)
    assert again == run


def test_rng_states_come_back_exactly(device: str) -> None:
    where = torch.device(device)
    state.seed_everything(7)
    saved = rng_state(where)
    assert ("cuda" in saved) == (where.type == "cuda")

    def draw() -> tuple[float, float, torch.Tensor, torch.Tensor]:
        return random.random(), np.random.rand(), torch.rand(3), torch.rand(3, device=where).cpu()

    first = draw()
    draw()  # the run goes on
    restore_rng([saved], rank=0, world_size=1, device=where)
    second = draw()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])
    # a checkpoint from before torchrun training holds one dict, not a list per process
    draw()
    restore_rng(saved, rank=0, world_size=1, device=where)
    assert draw()[:2] == first[:2]


def test_rng_states_saved_by_another_number_of_processes_start_afresh() -> None:
    cpu = torch.device("cpu")
    state.seed_everything(7)
    saved = [rng_state(cpu), rng_state(cpu)]
    state.seed_everything(8)
    expected = torch.rand(2)
    state.seed_everything(8)
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    state.logger.addHandler(handler)
    try:
        restore_rng(saved, rank=0, world_size=1, device=cpu)
    finally:
        state.logger.removeHandler(handler)
    assert torch.equal(torch.rand(2), expected)  # the stream it had, untouched
    assert messages == [
        "resuming on 1 processes a run saved by 2: random streams start afresh (not bitwise the same run)"
    ]


def test_deterministic_kernels_switch_on_and_everything_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with state.deterministic_kernels(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with state.deterministic_kernels(False):
        assert torch.are_deterministic_algorithms_enabled() == before[0]


def test_resume_refuses_other_classes_and_logs_changed_settings() -> None:
    classes = ClassSpec.default(3)
    checkpoint = Checkpoint(
        model="unet-small",
        state_dict={},
        classes=classes,
        normalization=Normalization((0.5,), (0.25,)),
        in_channels=1,
        config=TrainConfig().to_dict(),
        path=Path("run/last.pt"),
    )
    with pytest.raises(PixelwiseError, match=r"run/last.pt: the run was trained on other classes"):
        check_resume(checkpoint, TrainConfig(), ClassSpec.default(4), 1)
    with pytest.raises(PixelwiseError, match="other classes or channels"):
        check_resume(checkpoint, TrainConfig(), classes, 3)

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    state.logger.addHandler(handler)
    try:
        check_resume(checkpoint, TrainConfig(epochs=50, device="cpu"), classes, 1)  # may change: silent
        assert messages == []
        old = {key: value for key, value in checkpoint.config.items() if key != "model_options"}
        check_resume(replace(checkpoint, config=old), TrainConfig(lr=0.5), classes, 1)  # a run from before a setting
        assert messages == ["resuming with changed settings: lr"]
    finally:
        state.logger.removeHandler(handler)
