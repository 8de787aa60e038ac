"""--time: durations, the plan, and a run that ends within its budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pixelwise.checkpoint import load_checkpoint
from pixelwise.errors import PixelwiseError
from pixelwise.train.budget import TimeBudget, parse_duration
from pixelwise.train.config import TrainConfig
from pixelwise.train.loop import fit

from .conftest import TinyData


@pytest.mark.parametrize("text", ["soon", "10 minutes", "0s", "-5m", "", "m"])
def test_a_bad_duration_is_one_line(text: str) -> None:
    with pytest.raises(PixelwiseError, match="give a duration") as caught:
        parse_duration(text)
    assert "\n" not in str(caught.value)


def test_a_resumed_budget_counts_the_time_already_spent() -> None:
    budget = TimeBudget(60.0, started=time.perf_counter())
    assert 59.0 < budget.deadline - time.perf_counter() <= 60.0
    resumed = TimeBudget(60.0, started=time.perf_counter(), used=45.0)
    assert 14.0 < resumed.deadline - time.perf_counter() <= 15.0
    assert 44.0 < resumed.used() < 46.0


def test_a_budgeted_run_ends_within_its_time_and_its_schedule_with_it(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData
) -> None:
    seconds = 8.0
    config = TrainConfig(batch_size=4, crop_size=16, patience=0, lr=3e-3, time=f"{seconds:g}s")
    started = time.perf_counter()
    result = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "run", progress=False)
    elapsed = time.perf_counter() - started
    assert 0.9 * seconds <= elapsed <= 1.1 * seconds
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["budget"] == seconds and plan["epochs"] == len(result.history) >= 1
    assert plan["iterations_per_epoch"] >= 1 and plan["seconds_per_iteration"] > 0
    # the learning rate is near the end of its poly schedule when the time is
    assert result.history[-1]["lr"] < 0.25 * config.lr
    saved = load_checkpoint(tmp_path / "run" / "last.pt").extra["budget"]
    assert saved["plan"]["epochs"] == plan["epochs"] and 0 < saved["used"] <= 1.1 * seconds


def test_a_machine_that_slows_down_mid_epoch_still_ends_the_run_within_its_time(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two long epochs planned at the warm-up's pace; then every step takes 0.3 s more (another job took the
    cores): the first epoch ends where the time is spent, not after the iterations planned for it."""
    from pixelwise.train.trainer import Trainer

    seconds = 8.0
    started = time.perf_counter()
    original = Trainer.train_step

    def slowed(self: Trainer, *args: object, **kwargs: object) -> object:
        if time.perf_counter() - started > 0.3 * seconds:
            time.sleep(0.3)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "train_step", slowed)
    config = TrainConfig(batch_size=4, crop_size=16, patience=0, epochs=2, time=f"{seconds:g}s")
    fit(config, tiny_train, tiny_val, out_dir=tmp_path / "run", progress=False)
    assert time.perf_counter() - started <= 1.1 * seconds
