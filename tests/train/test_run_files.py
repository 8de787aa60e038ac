"""The run folder: what may be trained into, metrics.jsonl and curves.png."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.train.run_files import plot_curves, prepare_out_dir, write_history


def test_prepare_out_dir(tmp_path: Path) -> None:
    prepare_out_dir(tmp_path / "new" / "run", resume=False, overwrite=False)
    assert (tmp_path / "new" / "run").is_dir()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(PixelwiseError, match="is a file; give a folder"):
        prepare_out_dir(tmp_path / "file", resume=False, overwrite=True)
    (tmp_path / "new" / "run" / "notes.txt").write_text("mine")
    with pytest.raises(PixelwiseError, match=r"not empty; pass --resume .* --overwrite"):
        prepare_out_dir(tmp_path / "new" / "run", resume=False, overwrite=False)
    prepare_out_dir(tmp_path / "new" / "run", resume=False, overwrite=True)
    with pytest.raises(PixelwiseError, match=r"no last\.pt to resume from"):
        prepare_out_dir(tmp_path / "new" / "run", resume=True, overwrite=False)


def test_history_and_curves(tmp_path: Path) -> None:
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_miou": math.nan, "train_discriminator_loss": 1.3},
        {"epoch": 2, "train_loss": 0.5, "val_miou": 0.4, "train_discriminator_loss": 1.2, "val_iou": {"a": 0.4}},
    ]
    write_history(tmp_path / "metrics.jsonl", history)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["val_miou"] is None and lines[1]["val_iou"] == {"a": 0.4}  # NaN is no valid JSON
    plot_curves(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
