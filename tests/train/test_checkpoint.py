"""Saving checkpoints: atomic writes (reading them is tested in tests/test_checkpoint.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from pixelwise.data.classes import ClassSpec
from pixelwise.models.registry import create_model
from pixelwise.train import checkpoint as checkpoint_module
from pixelwise.train.checkpoint import save_checkpoint


def payload(model: torch.nn.Module | None = None) -> dict[str, Any]:
    model = model or create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    return {
        "model": {"name": "unet-small", "options": {"width": 4, "depth": 2}},
        "state_dict": model.state_dict(),
        "classes": ClassSpec.default(2).to_dict(),
        "normalization": {"mean": [0.5], "std": [0.25]},
        "in_channels": 1,
        "tile_size": 64,
    }


def test_a_failed_save_leaves_the_previous_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.pt"
    save_checkpoint(target, payload())
    before = target.read_bytes()

    def crash(obj: Any, file: Any) -> None:
        Path(file).write_bytes(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the process fails
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, payload())
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.pt"]
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new.pt", payload())
    assert not (tmp_path / "new.pt").exists()
