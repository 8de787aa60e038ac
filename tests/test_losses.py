"""Losses on hand-worked tiny tensors, ignore_index included."""

from __future__ import annotations

import math

import pytest
import torch

from pixelwise.errors import PixelwiseError
from pixelwise.losses import cross_entropy, dice_loss, focal_loss, make_loss

LN3 = math.log(3.0)


def three_pixels(ignored_logits: tuple[float, float] = (0.0, LN3)) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels a, b, c with softmax (3/4, 1/4), (1/2, 1/2) and, by default, (1/4, 3/4); targets 0, 1, ignore."""
    logits = torch.tensor([[[[LN3, 0.0, ignored_logits[0]]], [[0.0, 0.0, ignored_logits[1]]]]])
    target = torch.tensor([[[0, 1, 255]]])
    return logits, target


def test_cross_entropy_by_hand() -> None:
    logits, target = three_pixels()
    # a: -log(3/4), b: -log(1/2); c ignored
    assert cross_entropy(logits, target).item() == pytest.approx((math.log(4 / 3) + math.log(2)) / 2, abs=1e-6)
    # weights [1, 3]: a has weight 1, b weight 3, normalised by the sum of the weights
    weighted = cross_entropy(logits, target, class_weights=[1.0, 3.0]).item()
    assert weighted == pytest.approx((math.log(4 / 3) + 3 * math.log(2)) / 4, abs=1e-6)


def test_dice_by_hand_without_smoothing() -> None:
    logits, target = three_pixels()
    # class 0: |P∩Y| = 3/4, |P| = 3/4 + 1/2, |Y| = 1 -> 2/3; class 1: 1/2, 1/4 + 1/2, 1 -> 4/7
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(1 - (2 / 3 + 4 / 7) / 2, abs=1e-6)
    weighted = dice_loss(logits, target, smooth=0.0, class_weights=[1.0, 3.0]).item()
    assert weighted == pytest.approx(1 - (2 / 3 + 3 * 4 / 7) / 4, abs=1e-6)


def test_dice_by_hand_with_smoothing() -> None:
    logits, target = three_pixels()
    dice0 = (2 * 3 / 4 + 1) / (5 / 4 + 1 + 1)
    dice1 = (2 * 1 / 2 + 1) / (3 / 4 + 1 + 1)
    assert dice_loss(logits, target, smooth=1.0).item() == pytest.approx(1 - (dice0 + dice1) / 2, abs=1e-6)


def test_dice_ignored_pixels_do_not_count_as_class_zero() -> None:
    # the bug smp's multiclass Dice had: an ignored pixel counted in class 0's sums. Ours is unchanged by
    # whatever the network predicts there.
    for ignored in [(0.0, LN3), (9.0, -9.0), (-9.0, 9.0)]:
        logits, target = three_pixels(ignored)
        assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(8 / 21, abs=1e-6)


def test_dice_absent_class_is_penalised_only_by_its_predicted_mass() -> None:
    # class 2 is in no target; predicting it nowhere scores 1, predicting it somewhere scores s / (|P| + s)
    target = torch.tensor([[[0, 1]]])
    nowhere = torch.tensor([[[[20.0, 0.0]], [[0.0, 20.0]], [[-20.0, -20.0]]]])
    assert dice_loss(nowhere, target).item() == pytest.approx(0.0, abs=1e-6)
    somewhere = torch.tensor([[[[20.0, 0.0]], [[0.0, 0.0]], [[-20.0, 20.0]]]])  # pixel b: p2 ≈ 1
    dice2 = 1.0 / (1.0 + 1.0)
    dice1 = (0 + 1) / (0 + 1 + 1)
    assert dice_loss(somewhere, target).item() == pytest.approx(1 - (1 + dice1 + dice2) / 3, abs=1e-6)


def test_focal_by_hand_and_reduces_to_cross_entropy() -> None:
    logits, target = three_pixels()
    expected = ((1 / 4) ** 2 * math.log(4 / 3) + (1 / 2) ** 2 * math.log(2)) / 2
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(expected, abs=1e-6)
    for weights in (None, [1.0, 3.0]):
        focal = focal_loss(logits, target, gamma=0.0, class_weights=weights).item()
        assert focal == pytest.approx(cross_entropy(logits, target, class_weights=weights).item(), abs=1e-6)


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "ce+dice"])
def test_ignored_pixels_get_no_gradient(name: str) -> None:
    logits, target = three_pixels()
    logits.requires_grad_(True)
    make_loss(name)(logits, target).backward()
    assert logits.grad is not None
    assert torch.count_nonzero(logits.grad[..., 2]) == 0
    assert torch.count_nonzero(logits.grad[..., :2]) > 0


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "ce+dice"])
def test_all_ignored_batch_gives_a_finite_zero_with_a_gradient(name: str) -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    loss = make_loss(name)(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_custom_ignore_index_and_combination() -> None:
    logits, target = three_pixels()
    target = torch.where(target == 255, torch.tensor(7), target)
    combined = make_loss("ce+dice", ignore_index=7, dice_weight=0.5)(logits, target).item()
    expected = (
        cross_entropy(logits, target, ignore_index=7).item() + 0.5 * dice_loss(logits, target, ignore_index=7).item()
    )
    assert combined == pytest.approx(expected, abs=1e-6)


def test_binary_task_is_two_classes() -> None:
    logits = torch.tensor([[[[2.0, -2.0]], [[-2.0, 2.0]]]])
    target = torch.tensor([[[0, 1]]])
    assert make_loss("ce")(logits, target).item() == pytest.approx(math.log(1 + math.exp(-4)), abs=1e-6)


def test_bad_names_and_weights_are_user_errors() -> None:
    with pytest.raises(PixelwiseError, match="unknown loss 'lovasz'"):
        make_loss("lovasz")
    with pytest.raises(PixelwiseError, match="3 class weights for 2 classes"):
        make_loss("ce", class_weights=[1, 2, 3])(*three_pixels())
