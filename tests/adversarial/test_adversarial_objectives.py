"""The adversarial losses against values worked out by hand on 1×2 and 2×2 maps."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from pixelwise.adversarial import objectives
from pixelwise.adversarial.objectives import (
    adversarial_loss,
    confident_pixels,
    discriminator_accuracy,
    discriminator_loss,
    discriminator_losses,
    frozen,
    one_hot,
    pseudo_label_loss,
    semi_supervised_loss,
    smooth_one_hot,
    trusted_pixels,
    zero_invalid,
)

LN3 = math.log(3.0)


def test_doctests() -> None:
    assert doctest.testmod(objectives).failed == 0


def test_one_hot_zeroes_ignored_pixels() -> None:
    labels = torch.tensor([[[0, 2], [255, 1]]])
    maps, valid = one_hot(labels, 3, ignore_index=255)
    expected = torch.tensor([[[[1, 0], [0, 0]], [[0, 0], [0, 1]], [[0, 1], [0, 0]]]], dtype=torch.float32)
    assert maps.dtype == torch.float32 and maps.shape == (1, 3, 2, 2)
    torch.testing.assert_close(maps, expected)
    assert valid.tolist() == [[[True, True], [False, True]]]


def test_one_hot_other_ignore_index_and_uint8() -> None:
    maps, valid = one_hot(torch.tensor([[[1, 0]]], dtype=torch.uint8), 2, ignore_index=0)
    assert maps[0, :, 0].T.tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert valid.tolist() == [[[True, False]]]


def test_one_hot_refuses_labels_outside_the_classes() -> None:
    with pytest.raises(ValueError, match=r"0\.\.3 but there are 3 classes"):
        one_hot(torch.tensor([[[0, 3]]]), 3)
    with pytest.raises(ValueError, match="integer"):
        one_hot(torch.zeros(1, 2, 2), 3)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        one_hot(torch.zeros(2, 2, dtype=torch.long), 3)


def test_discriminator_loss_by_hand() -> None:
    # BCE(x, 1) = log(1 + e^-x), BCE(x, 0) = log(1 + e^x): at 0 both are log 2, at ±log 3 they are log(4/3)
    real = torch.tensor([[[[0.0, LN3]]]])
    fake = torch.tensor([[[[0.0, -LN3]]]])
    expected = (math.log(2) + math.log(4 / 3)) / 2 * 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, abs=1e-6)
    # the second pixel ignored: only the log 2 terms remain
    valid = torch.tensor([[[True, False]]])
    assert discriminator_loss(real, fake, valid).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    # a (N, 1, H, W) mask works the same
    assert discriminator_loss(real, fake, valid.unsqueeze(1)).item() == pytest.approx(2 * math.log(2), abs=1e-6)


def test_discriminator_loss_label_smoothing() -> None:
    # target 0.9 at logit log 3 (p = 3/4): -(0.9 log 3/4 + 0.1 log 1/4)
    real = torch.tensor([[[[LN3]]]])
    fake = torch.tensor([[[[-LN3]]]])
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25)) + math.log(4 / 3)
    assert discriminator_loss(real, fake, real_label=0.9).item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="real_label"):
        discriminator_loss(real, fake, real_label=1.5)


def test_discriminator_loss_gradient_by_hand() -> None:
    # d/dx BCE(x, 1) = σ(x) - 1, d/dx BCE(x, 0) = σ(x); each averaged over the 2 valid pixels of 3
    real = torch.tensor([[[[0.0, LN3, 7.0]]]], requires_grad=True)
    fake = torch.tensor([[[[0.0, -LN3, 7.0]]]], requires_grad=True)
    discriminator_loss(real, fake, torch.tensor([[[True, True, False]]])).backward()
    assert real.grad is not None and fake.grad is not None
    torch.testing.assert_close(real.grad, torch.tensor([[[[-0.25, -0.125, 0.0]]]]))
    torch.testing.assert_close(fake.grad, torch.tensor([[[[0.25, 0.125, 0.0]]]]))


def test_adversarial_loss_by_hand() -> None:
    fake = torch.tensor([[[[LN3, -LN3]]]], requires_grad=True)
    loss = adversarial_loss(fake)
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2, abs=1e-6)
    loss.backward()
    assert fake.grad is not None
    torch.testing.assert_close(fake.grad, torch.tensor([[[[-0.125, -0.375]]]]))
    assert adversarial_loss(fake.detach(), torch.tensor([[[False, True]]])).item() == pytest.approx(math.log(4))


def test_no_valid_pixel_gives_a_zero_that_backpropagates() -> None:
    fake = torch.tensor([[[[1.0, 2.0]]]], requires_grad=True)
    none = torch.zeros(1, 1, 2, dtype=torch.bool)
    loss = adversarial_loss(fake, none) + discriminator_loss(fake, fake, none)
    assert loss.item() == 0.0
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() == 0


def test_masks_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        adversarial_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        adversarial_loss(torch.zeros(1, 2, 2, 2))


def _two_pixel_logits() -> torch.Tensor:
    # pixel 0 predicts class 0 with logits (2, 0); pixel 1 predicts class 1 with logits (0, 1)
    return torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]], requires_grad=True)


def test_semi_supervised_loss_by_hand() -> None:
    logits = _two_pixel_logits()
    d_logits = torch.tensor([[[[0.0, 0.0]]]])  # σ = 0.5 at both
    loss, fraction = semi_supervised_loss(logits, d_logits, threshold=0.2)
    # both trusted: mean of -log softmax of the argmax class
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert fraction == 1.0
    # the threshold is strict: σ(0) = 0.5 is not above 0.5
    loss, fraction = semi_supervised_loss(logits, d_logits, threshold=0.5)
    assert loss.item() == 0.0 and fraction == 0.0


def test_semi_supervised_loss_masks_and_gradient_by_hand() -> None:
    logits = _two_pixel_logits()
    d_logits = torch.tensor([[[[-5.0, 5.0]]]], requires_grad=True)  # only pixel 1 is trusted at T = 0.2
    loss, fraction = semi_supervised_loss(logits, d_logits, threshold=0.2)
    assert fraction == 0.5
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    loss.backward()
    # d CE / d logits = softmax - one-hot(argmax) at the trusted pixel, zero at the other; nothing into D
    p = 1 / (1 + math.e)  # softmax of class 0 at pixel 1
    assert logits.grad is not None
    torch.testing.assert_close(logits.grad, torch.tensor([[[[0.0, p]], [[0.0, -p]]]]))
    assert d_logits.grad is None


def test_semi_supervised_loss_without_confident_pixels_is_a_backpropagating_zero() -> None:
    logits = _two_pixel_logits()
    loss, fraction = semi_supervised_loss(logits, torch.full((1, 1, 1, 2), -9.0), threshold=0.2)
    assert (loss.item(), fraction) == (0.0, 0.0)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() == 0


def test_semi_supervised_loss_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="do not match"):
        semi_supervised_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 3, 4), threshold=0.2)


def test_discriminator_accuracy_counts_valid_pixels_only() -> None:
    real = torch.tensor([[[[1.0, -1.0, 3.0, 0.5]]]])
    fake = torch.tensor([[[[-1.0, 1.0, 0.0, 9.0]]]])
    valid = torch.tensor([[[True, True, True, False]]])
    # real: 1.0 and 3.0 of the three valid are called real; fake: -1.0 and 0.0 (logit <= 0) are called fake
    assert discriminator_accuracy(real, fake, valid) == pytest.approx((2 / 3, 2 / 3))
    assert discriminator_accuracy(real, fake) == pytest.approx((0.75, 0.5))


def test_frozen_restores_each_parameters_flag() -> None:
    module = torch.nn.Linear(2, 2)
    module.bias.requires_grad_(False)
    with frozen(module):
        assert not module.weight.requires_grad and not module.bias.requires_grad
    assert module.weight.requires_grad and not module.bias.requires_grad
    with pytest.raises(RuntimeError), frozen(module):
        raise RuntimeError("boom")
    assert module.weight.requires_grad


def test_smooth_one_hot_keeps_the_class_and_sums_to_one() -> None:
    maps, valid = one_hot(torch.tensor([[[0, 2, 255], [1, 1, 0]]]), 3)
    generator = torch.Generator().manual_seed(0)
    soft = smooth_one_hot(maps, valid, amount=0.3, generator=generator)
    true_mass = (soft * maps).sum(dim=1)[valid]
    assert ((true_mass >= 0.7) & (true_mass <= 1.0)).all() and (true_mass < 1.0).any()
    torch.testing.assert_close(soft.sum(dim=1)[valid], torch.ones(int(valid.sum())))
    # the other two classes share the rest equally; the ignored pixel stays all-zero
    others = (soft * (1 - maps)).permute(0, 2, 3, 1)[valid]  # (valid pixels, K): the true class's entry is 0
    torch.testing.assert_close(others.sum(dim=1), 1 - true_mass)
    torch.testing.assert_close(others.max(dim=1).values, (1 - true_mass) / 2)
    assert soft[0, :, 0, 2].abs().sum() == 0
    assert torch.equal(smooth_one_hot(maps, valid, amount=0.0), maps)
    with pytest.raises(ValueError, match="amount"):
        smooth_one_hot(maps, valid, amount=1.5)


def test_smooth_one_hot_by_hand() -> None:
    # e = amount · u with u from the generator: true class 1 - e, each of the K - 1 = 3 others e / 3
    maps, valid = one_hot(torch.tensor([[[3]]]), 4)
    u = torch.rand((1, 1, 1, 1), generator=torch.Generator().manual_seed(5)).item()
    soft = smooth_one_hot(maps, valid, amount=0.6, generator=torch.Generator().manual_seed(5))
    e = 0.6 * u
    torch.testing.assert_close(soft[0, :, 0, 0], torch.tensor([e / 3, e / 3, e / 3, 1 - e]))


def test_trusted_share_counts_only_valid_pixels() -> None:
    # D trusts pixels 0 and 2; pixel 2 is padding: one trusted pixel out of two valid ones
    d_logits = torch.tensor([[[[5.0, -5.0, 5.0]]]])
    valid = torch.tensor([[[True, True, False]]])
    mask, share = trusted_pixels(d_logits, valid, threshold=0.2)
    assert mask.tolist() == [[[True, False, False]]] and share == 0.5
    logits = torch.tensor([[[[2.0, 0.0, 0.0]], [[0.0, 2.0, 2.0]]]])
    loss, fraction = semi_supervised_loss(logits, d_logits, valid, threshold=0.2)
    assert fraction == share
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)  # pixel 0 alone
    assert trusted_pixels(d_logits, torch.zeros(1, 1, 3, dtype=torch.bool), threshold=0.2)[1] == 0.0


def test_the_halves_of_the_discriminator_loss_each_average_over_their_own_pixels() -> None:
    # two reals (one valid) and three fakes (two valid): fakes from a labeled and an unlabeled batch
    real = torch.tensor([[[[0.0, 5.0]]]])
    fake = torch.tensor([[[[0.0, -LN3, 9.0]]]])
    real_half, fake_half = discriminator_losses(
        real, fake, torch.tensor([[[True, False]]]), fake_valid=torch.tensor([[[True, True, False]]])
    )
    assert real_half.item() == pytest.approx(math.log(2), abs=1e-6)
    assert fake_half.item() == pytest.approx((math.log(2) + math.log(4 / 3)) / 2, abs=1e-6)
    total = discriminator_loss(
        real, fake, torch.tensor([[[True, False]]]), fake_valid=torch.tensor([[[True, True, False]]])
    )
    assert total.item() == pytest.approx(real_half.item() + fake_half.item())
    accuracy = discriminator_accuracy(
        real, fake, torch.tensor([[[True, True]]]), fake_valid=torch.tensor([[[1, 1, 0]]])
    )
    # reals: logit 0 is not called real, 5 is; fakes: 0 and -ln 3 are called fake, the 9 lies outside fake_valid
    assert accuracy == (0.5, 1.0)


def test_masked_fakes_are_zero_exactly_where_real_maps_are() -> None:
    labels = torch.tensor([[[0, 255, 1], [2, 2, 255]]])
    real, valid = one_hot(labels, 3)
    fake = zero_invalid(torch.softmax(torch.randn(1, 3, 2, 3), dim=1), valid)
    assert torch.equal(fake.sum(dim=1) == 0, real.sum(dim=1) == 0)
    assert torch.allclose(fake.sum(dim=1)[valid], torch.ones(4))


def test_confident_pixels_is_the_one_threshold_of_d_and_of_the_softmax() -> None:
    confidence = torch.tensor([[[0.1, 0.3, 0.96, 0.99]]])
    valid = torch.tensor([[[True, True, True, False]]])
    mask, share = confident_pixels(confidence, valid, threshold=0.2)
    assert mask.tolist() == [[[False, True, True, False]]] and share == pytest.approx(2 / 3)
    # D's version thresholds σ(logit): the same pixels for the same probabilities
    logits = torch.logit(confidence).unsqueeze(1)
    assert torch.equal(trusted_pixels(logits, valid, threshold=0.2)[0], mask)
    with pytest.raises(ValueError, match="confidence map"):
        confident_pixels(confidence.unsqueeze(1), threshold=0.5)


def test_pseudo_label_loss_teaches_the_argmax_on_trusted_pixels_only() -> None:
    logits = torch.tensor([[[[2.0, 0.0, 1.0]], [[0.0, 2.0, 1.0]]]], requires_grad=True)
    loss = pseudo_label_loss(logits, torch.tensor([[[True, False, False]]]))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    assert logits.grad is not None and logits.grad[..., 1:].abs().sum() == 0  # untrusted pixels learn nothing
    none = pseudo_label_loss(logits, torch.zeros(1, 1, 3, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad
