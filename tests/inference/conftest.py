"""A small trained-model file as ``pixelwise train`` writes it, for the backend and export tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
from pixelwise.data.classes import ClassSpec
from pixelwise.models.network import SegmentationNetwork
from pixelwise.models.registry import create_model

CLASSES = ClassSpec.default(3, names=["background", "cell", "edge"])


def save_small_checkpoint(
    path: Path, *, name: str = "unet-small", in_channels: int = 1, seed: int = 0, **options: Any
) -> SegmentationNetwork:
    """A checkpoint of model ``name`` (random weights, seeded) at ``path``; the model, in eval mode."""
    options = options or ({"width": 4, "depth": 2} if name == "unet-small" else {})
    torch.manual_seed(seed)
    model = create_model(name, num_classes=CLASSES.num_classes, in_channels=in_channels, **options)
    # BatchNorm statistics away from 0/1, as after training, so the export must carry them right
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)  # type: ignore[operator]
            module.running_var.uniform_(0.5, 2.0)  # type: ignore[operator]
    stored = {key: value for key, value in model.spec.items() if key not in ("name", "num_classes", "in_channels")}
    save_checkpoint(
        path,
        Checkpoint(
            model=name,
            model_options=stored,
            state_dict=model.state_dict(),
            classes=CLASSES,
            normalization=Normalization((0.5,) * in_channels, (0.25,) * in_channels),
            in_channels=in_channels,
            tile_size=32,
            stride=model.stride,
        ),
    )
    return model.eval()


@pytest.fixture
def write_checkpoint() -> Callable[..., SegmentationNetwork]:
    """``write_checkpoint(path, name="unet-small", in_channels=1, **options)`` -> the model saved there."""
    return save_small_checkpoint


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, its .onnx export), made once for the session: exporting takes seconds."""
    from pixelwise.inference.onnx_export import export

    folder = tmp_path_factory.mktemp("exported")
    save_small_checkpoint(folder / "best.pt")
    report = export(folder / "best.pt")
    return folder / "best.pt", report.path
