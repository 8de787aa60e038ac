"""The networks written here: FCN-8s starts from bilinear upsampling; the small U-Net is as small as claimed;
the any-size wrapper pads and crops without moving a pixel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixelwise.models.fcn import FCN, bilinear_kernel
from pixelwise.models.network import SegmentationNetwork, pad_amounts
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


@pytest.mark.parametrize("size", [(1, 1), (13, 16), (45, 59), (64, 64)])
def test_padding_is_cropped_back_to_the_same_pixels(
    size: tuple[int, int], device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Around a per-pixel network, pad + crop must be invisible: a misplaced crop would shift the output.

    The padded and the bare input are of other sizes, for which oneDNN (on CPUs with AVX-512) and cuDNN pick
    other kernels whose multiply-adds may round differently (measured: one float32 ulp on a 1 × 1 input on
    an AVX-512 EPYC; with TF32, cuDNN's default, one may even round the inputs to 10 bits). So TF32 is off and
    a few float32 ulps are allowed: a crop one pixel off changes these values by about 0.1 (checked below),
    thousands of times more.
    """
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch.manual_seed(0)
    pointwise = torch.nn.Conv2d(1, 2, 1).to(device)
    model = SegmentationNetwork(pointwise, stride=32, spec={"name": "pointwise", "num_classes": 2, "in_channels": 1})
    images = torch.rand(2, 1, *size, device=device)
    tolerance = {"rtol": 1e-6, "atol": 1e-6}
    with torch.inference_mode():
        expected = pointwise(images)
        torch.testing.assert_close(model(images), expected, **tolerance)
        if size[1] > 1:  # the tolerance would catch a crop one pixel off
            shifted = torch.roll(expected, 1, dims=-1)
            assert (shifted - expected).abs().max() > 1000 * (tolerance["atol"] + 1e-9)


def test_padding_amounts() -> None:
    assert pad_amounts(97, multiple=32) == (15, 16)
    assert pad_amounts(96, multiple=32) == (0, 0)
    assert pad_amounts(1, multiple=32) == (15, 16)
    assert pad_amounts(50, minimum=64) == (7, 7)
    assert pad_amounts(50, minimum=64, multiple=32) == (7, 7)
    assert pad_amounts(70, minimum=64, multiple=32) == (13, 13)
