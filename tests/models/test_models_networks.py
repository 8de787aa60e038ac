"""The two networks written here: FCN-8s starts from bilinear upsampling; the small U-Net is as small as claimed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixelwise.models.fcn import FCN, bilinear_kernel
from pixelwise.models.unet import SmallUNet


def test_bilinear_kernel_upsamples_like_bilinear_interpolation() -> None:
    upsample = torch.nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False)
    upsample.weight.data.copy_(bilinear_kernel(2, 4))
    scores = torch.rand(1, 2, 6, 7)
    with torch.no_grad():
        learned = upsample(scores)
    reference = F.interpolate(scores, scale_factor=2, mode="bilinear", align_corners=False)
    assert learned.shape == reference.shape == (1, 2, 12, 14)
    # identical away from the border, where the transposed convolution sees zeros instead of a clamped edge
    torch.testing.assert_close(learned[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1])
    # and the kernel never mixes classes
    assert bilinear_kernel(3, 4)[0, 1].abs().sum() == 0


def test_fcn_starts_as_the_single_stream_network() -> None:
    """Skip scores start at zero (as in the paper), so at first only the stride-32 scores speak."""
    torch.manual_seed(0)
    model = FCN(encoder="resnet18", num_classes=3, in_channels=3).eval()
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        features = model.encoder(images)
        coarse = model.up16(model.up32(model.score32(model.head(features[5]))))
        expected = F.interpolate(coarse, size=(64, 96), mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(images), expected)
    # the skips do learn: they receive gradients from the first step on
    model.train()
    model(images.expand(2, 3, 64, 96)).square().mean().backward()
    assert model.score16.weight.grad is not None and model.score16.weight.grad.abs().sum() > 0
    assert model.score8.weight.grad is not None and model.score8.weight.grad.abs().sum() > 0


def test_small_unet_size_and_stride() -> None:
    model = SmallUNet(num_classes=2, in_channels=3)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    assert 1.8e6 < parameters < 2.0e6  # "1.9 M parameters" in the docs
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 48)).shape == (1, 2, 32, 48)
    # depth 4 pools four times: sizes must divide by 16 without the create_model wrapper
    with pytest.raises(RuntimeError):
        model(torch.rand(1, 3, 40, 40))
