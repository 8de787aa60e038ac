"""Progress off a terminal: plain lines every few seconds, so long work piped into a file is never silent."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixelwise import progress
from pixelwise.progress import LineProgress, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_and_a_last_one() -> None:
    stream, clock = io.StringIO(), Clock()
    with LineProgress(total=10, desc="predict", unit="tile", stream=stream, interval=5, clock=clock) as bar:
        bar.set_postfix_str("big.tif")
        for _ in range(10):
            clock.now += 2
            bar.update(1)
    lines = stream.getvalue().splitlines()
    # at 6 s (3 tiles), 12 s (6), 18 s (9), then the end at 20 s
    assert lines == [
        "predict: 3/10 tiles (30%), 6 s, 0.5 tiles/s, about 14 s left (big.tif)",
        "predict: 6/10 tiles (60%), 12 s, 0.5 tiles/s, about 8 s left (big.tif)",
        "predict: 9/10 tiles (90%), 18 s, 0.5 tiles/s, about 2 s left (big.tif)",
        "predict: 10/10 tiles (100%), 20 s (big.tif)",
    ]


def test_short_work_prints_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    with LineProgress(total=3, desc="evaluate", unit="image", stream=stream, interval=5, clock=clock) as bar:
        for _ in range(3):
            clock.now += 1
            bar.update(1)
    assert stream.getvalue() == ""


def test_tqdm_on_a_terminal_and_lines_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_bar(total=1, desc="x", unit="x", stream=io.StringIO()), LineProgress)
    assert not isinstance(progress_bar(total=1, desc="x", unit="x", stream=Terminal()), LineProgress)
    assert not isinstance(progress_bar(total=1, desc="x", unit="x", stream=io.StringIO(), quiet=True), LineProgress)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    import torch

    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    path = tmp_path / "best.pt"
    options = {"model": "unet-small", "model_options": {"width": 4, "depth": 2}, "state_dict": model.state_dict()}
    record = Checkpoint(**options, classes=ClassSpec.default(2), normalization=Normalization((0.5,), (0.25,)),
                        in_channels=1, tile_size=16)  # fmt: skip
    save_checkpoint(path, record)
    return path


def test_predict_piped_prints_progress_lines(
    cli: Any, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's stderr is not a terminal here, as when piped: with a zero interval, every tile is a line."""
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(progress, "PIPE_INTERVAL", 0.0)
    result = cli("predict", checkpoint, tmp_path / "a.png", "-o", tmp_path / "out", "--tile", "16")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("predict: ")]
    # a 40-pixel image in 16-pixel tiles overlapping by half: 4 x 4 tiles, 4 to a batch
    assert [line.split(",")[0] for line in lines] == [
        f"predict: {n}/16 tiles ({n * 100 // 16}%)" for n in (4, 8, 12, 16)
    ]
    quiet = cli("predict", checkpoint, tmp_path / "a.png", "-o", tmp_path / "q", "--tile", "16", "-q")
    assert quiet.returncode == 0 and "tiles" not in quiet.stderr


def test_train_piped_prints_a_line_per_interval_not_a_redrawn_bar(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train's epochs report through the same progress as predict: lines in a pipe, no carriage returns."""
    data = tmp_path / "shapes"
    assert cli("datasets", "export", "shapes", "-o", data, "--count", "8", "--size", "16").returncode == 0
    monkeypatch.setattr(progress, "PIPE_INTERVAL", 0.0)
    tiny = ["--crop-size", "16", "--batch-size", "4", "--model-option", "width=4", "--model-option", "depth=2"]
    result = cli("train", data, "-o", tmp_path / "run", "--epochs", "1", *tiny)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    steps = [line for line in result.stderr.splitlines() if line.startswith("epoch 1/1: ")]
    assert steps and steps[-1].startswith(f"epoch 1/1: {len(steps)}/{len(steps)} its (100%)"), result.stderr
