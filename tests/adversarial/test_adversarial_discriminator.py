"""The discriminator: published layout, any input size, optional image conditioning, and it can learn."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from pixelwise.adversarial import discriminator as discriminator_module
from pixelwise.adversarial.discriminator import Discriminator, _same_padding, downsamplings_for, map_side
from pixelwise.adversarial.objectives import discriminator_accuracy, discriminator_loss, one_hot


def test_doctests() -> None:
    assert doctest.testmod(discriminator_module).failed == 0


def test_layout_is_five_strided_4x4_convolutions_without_batch_norm() -> None:
    d = Discriminator(5, base_channels=8)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 1]
    assert convs[0].in_channels == 5
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert d.activation.negative_slope == 0.2


def test_default_width_is_the_papers() -> None:
    d = Discriminator(21)
    assert [c.out_channels for c in d.modules() if isinstance(c, nn.Conv2d)] == [64, 128, 256, 512, 1]


@pytest.mark.parametrize(("size", "expected"), [(32, (1, 1)), (2, (1, 1)), (17, (1, 2)), (1, (1, 2)), (3, (1, 2))])
def test_same_padding(size: int, expected: tuple[int, int]) -> None:
    assert _same_padding(size) == expected
    # the padded 4×4 stride-2 convolution gives ceil(size / 2) outputs, never zero
    assert (size + sum(expected) - 4) // 2 + 1 == -(-size // 2)


@pytest.mark.parametrize("shape", [(17, 23), (1, 1), (32, 32), (5, 64)])
def test_output_is_one_logit_per_input_pixel(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    d = Discriminator(3, base_channels=4)
    probabilities = torch.softmax(torch.randn(2, 3, *shape), dim=1)
    out = d(probabilities)
    assert out.shape == (2, 1, *shape)
    assert torch.isfinite(out).all()


def test_even_sizes_match_the_published_padding_of_one() -> None:
    torch.manual_seed(0)
    d = Discriminator(3, base_channels=4)
    x = torch.softmax(torch.randn(1, 3, 64, 32), dim=1)
    reference = x
    for conv in d.convs:
        reference = d.activation(nn.functional.conv2d(reference, conv.weight, conv.bias, stride=2, padding=1))
    reference = nn.functional.conv2d(reference, d.classifier.weight, d.classifier.bias, stride=2, padding=1)
    reference = nn.functional.interpolate(reference, size=(64, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(d(x), reference)


def test_image_conditioning_concatenates_the_image() -> None:
    torch.manual_seed(0)
    d = Discriminator(3, image_channels=2, base_channels=4)
    assert d.convs[0].in_channels == 5
    probabilities = torch.softmax(torch.randn(2, 3, 9, 11), dim=1)
    image = torch.randn(2, 2, 9, 11)
    out = d(probabilities, image)
    assert out.shape == (2, 1, 9, 11)
    # the image matters: another image, another verdict
    assert not torch.allclose(out, d(probabilities, image + 1.0))
    with pytest.raises(ValueError, match="image-conditioned"):
        d(probabilities)
    with pytest.raises(ValueError, match="does not match"):
        d(probabilities, image[:, :1])


def test_wrong_inputs_are_refused() -> None:
    d = Discriminator(3, base_channels=4)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        d(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="not image-conditioned"):
        d(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError):
        Discriminator(0)


def test_gradient_reaches_the_probability_map() -> None:
    # the adversarial loss trains the segmenter through D: D must pass a gradient back to its input
    torch.manual_seed(0)
    d = Discriminator(3, base_channels=4)
    probabilities = torch.softmax(torch.randn(1, 3, 12, 12), dim=1).requires_grad_(True)
    d(probabilities).sum().backward()
    assert probabilities.grad is not None and probabilities.grad.abs().sum() > 0


def test_learns_to_tell_one_hot_maps_from_soft_predictions() -> None:
    # a smoke test of D with its loss: one-hot maps versus blurred softmax maps of the same labels
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (4, 16, 16))
    real, valid = one_hot(labels, 3)
    fake = torch.softmax(2.0 * real + 0.5 * torch.randn_like(real), dim=1)
    d = Discriminator(3, base_channels=4)
    optimizer = torch.optim.Adam(d.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        discriminator_loss(d(real), d(fake), valid).backward()
        optimizer.step()
    real_accuracy, fake_accuracy = discriminator_accuracy(d(real), d(fake), valid)
    assert real_accuracy > 0.9 and fake_accuracy > 0.9


@pytest.mark.parametrize(("crop", "downsamplings", "side"), [(32, 2, 8), (96, 3, 12), (128, 4, 8), (321, 5, 11)])
def test_small_crops_keep_a_spatial_map_of_at_least_8x8(crop: int, downsamplings: int, side: int) -> None:
    # five stride-2 layers leave a 32² crop one logit (a 96² crop 3×3): one verdict for every pixel of it
    assert downsamplings_for(crop, min_map=8) == downsamplings
    d = Discriminator(3, base_channels=4, downsamplings=downsamplings)
    assert d.coarse(torch.softmax(torch.randn(1, 3, crop, crop), dim=1)).shape[-2:] == (side, side)
    assert [c.stride for c in d.modules() if isinstance(c, nn.Conv2d)] == [(2, 2)] * downsamplings + [(1, 1)] * (
        5 - downsamplings
    )
    assert Discriminator(3, base_channels=4).coarse(torch.zeros(1, 3, crop, crop)).shape[-1] == map_side(crop, 5)
    assert downsamplings_for(crop, min_map=0) == 5  # the paper's D, whatever the crop


def test_the_trainer_builds_d_for_its_crops() -> None:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.trainer import build_trainer

    def coarse_side(**settings: object) -> int:
        config = TrainConfig(adversarial_weight=0.01, discriminator_base_channels=4, model_options={"width": 4})
        trainer = build_trainer(
            config.replace(**settings), classes=ClassSpec.default(3), in_channels=1, total_iterations=4
        )
        assert trainer.raw_discriminator is not None
        crop = trainer.config.crop_size
        return int(trainer.raw_discriminator.coarse(torch.zeros(1, 3, crop, crop)).shape[-1])

    assert coarse_side(crop_size=96) == 12
    assert coarse_side(crop_size=64, discriminator_min_map=16) == 16
    assert coarse_side(crop_size=96, discriminator_min_map=0) == 3  # switched off: the paper's five layers


def test_stride_one_layers_keep_the_size_for_any_input() -> None:
    d = Discriminator(3, base_channels=4, downsamplings=0)
    for shape in ((1, 1), (7, 12)):
        assert d.coarse(torch.zeros(1, 3, *shape)).shape[-2:] == shape
    with pytest.raises(ValueError, match="downsamplings"):
        Discriminator(3, downsamplings=6)
