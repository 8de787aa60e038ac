"""What keeps `pixelwise export` at seconds: timm's "same" padding as constants, no in-place rewrites; the file
still matches PyTorch (the parity checks in test_inference_onnx.py hold every architecture to that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from timm.layers import Conv2dSame
from torch import nn

from pixelwise.data.classes import ClassSpec
from pixelwise.inference import onnx_export
from pixelwise.inference.onnx_export import _out_of_place, _static_same_padding, check_parity, export, onnx_bytes
from pixelwise.inference.spec import InferenceSpec
from pixelwise.models.network import SegmentationNetwork


class SamePadded(nn.Module):
    """Three stride-2 TensorFlow-"same" convolutions (kernels 3, 5, 4: even and odd padding), then back up."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            Conv2dSame(1, 4, 3, stride=2), nn.ReLU(inplace=True), Conv2dSame(4, 4, 5, stride=2), Conv2dSame(4, 2, 4, 2)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(self.convs(images), scale_factor=8.0, mode="nearest")


def test_same_padding_is_exported_as_constants_that_hold_for_every_multiple_of_the_stride() -> None:
    torch.manual_seed(0)
    network = SamePadded().eval()
    batch, rows, columns = (torch.export.Dim(name, min=1, max=512) for name in ("batch", "rows", "columns"))
    with _static_same_padding(network, 1, 8) as constant:
        assert constant
        program = torch.export.export(
            network, (torch.randn(2, 1, 16, 24),), dynamic_shapes=({0: batch, 2: 8 * rows, 3: 8 * columns},)
        )
    pads = [node.args[1] for node in program.graph.nodes if "pad" in str(node.target)]
    assert len(pads) == 3 and all(isinstance(amount, int) for pad in pads for amount in pad)
    for shape in [(1, 1, 16, 16), (3, 1, 40, 16), (1, 1, 24, 96)]:  # (torch.export assumes sides above 1)
        images = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(images), network(images), rtol=0, atol=0)
    # outside the export, timm computes its padding as before
    import timm.layers.padding

    assert timm.layers.padding.get_same_padding(7, 3, 2, 1) == 2


def test_where_a_layer_would_see_other_sides_timms_padding_stays() -> None:
    """Declared stride 4 while the third layer needs multiples of 8: no constants (timm's slow, general way)."""
    import timm.layers.padding

    network = SegmentationNetwork(SamePadded(), stride=4, spec={"num_classes": 2, "in_channels": 1}).eval()
    original = timm.layers.padding.get_same_padding
    with _static_same_padding(network.network, 1, 4) as constant:
        assert not constant and timm.layers.padding.get_same_padding is original
    with _static_same_padding(network.network, 1, 8) as constant:
        assert constant and timm.layers.padding.get_same_padding is not original
    assert timm.layers.padding.get_same_padding is original


def test_logits_of_another_size_are_a_failed_check_not_a_crash(
    exported: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelwise.checkpoint import model_from_checkpoint

    checkpoint, model_file = exported
    cropped = onnx_export.padded_forward
    monkeypatch.setattr(onnx_export, "padded_forward", lambda *arguments: cropped(*arguments)[..., :-1])
    checks = check_parity(
        model_from_checkpoint(checkpoint), model_file.read_bytes(), InferenceSpec.from_checkpoint(checkpoint)
    )
    assert not any(check.passed for check in checks) and "FAILED" in checks[0].describe()


def test_in_place_layers_are_switched_back_after_the_export() -> None:
    from pixelwise.models.registry import create_model

    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    switched = [module for module in model.modules() if getattr(module, "inplace", None) is True]
    assert switched  # unet-small's ReLUs work in place
    with _out_of_place(model):
        assert not any(getattr(module, "inplace", False) for module in model.modules())
    assert all(module.inplace is True for module in switched)
    spec = InferenceSpec(
        model="unet-small", classes=ClassSpec.default(2), mean=(0.5,), std=(0.25,), in_channels=1, stride=model.stride
    )
    assert onnx_bytes(model.eval(), spec)
    assert all(module.inplace is True for module in switched)


@pytest.mark.slow
def test_the_default_encoder_exports_and_matches(tmp_path: Path, write_checkpoint: Any) -> None:
    """EfficientNet-Lite0 (timm's TensorFlow "same" padding) took 415 s to export before (issue 24)."""
    write_checkpoint(tmp_path / "best.pt", name="unet", in_channels=3, decoder_channels=(16, 8, 8, 4, 4))
    report = export(tmp_path / "best.pt")
    assert all(check.passed for check in report.checks)
    assert max(check.max_difference for check in report.checks) < 1e-3
    assert np.isclose(min(check.agreement for check in report.checks), 1.0, atol=1e-3)
