"""Gradient isolation: the segmenter's update never moves D, D's update never moves the segmenter."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.adversarial import (
    Discriminator,
    adversarial_loss,
    discriminator_loss,
    frozen,
    one_hot,
    semi_supervised_loss,
)

NUM_CLASSES = 3


def _setup() -> tuple[nn.Module, Discriminator, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    segmenter = nn.Conv2d(1, NUM_CLASSES, 3, padding=1)
    discriminator = Discriminator(NUM_CLASSES, base_channels=4)
    images = torch.randn(2, 1, 12, 10)
    labels = torch.randint(0, NUM_CLASSES, (2, 12, 10))
    labels[0, 0, :4] = 255
    return segmenter, discriminator, images, labels


def _snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _unchanged(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


def _segmenter_loss(
    segmenter: nn.Module, discriminator: Discriminator, images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = segmenter(images)
    _, valid = one_hot(labels, NUM_CLASSES)
    fake = discriminator(torch.softmax(logits, dim=1))
    return F.cross_entropy(logits, labels, ignore_index=255) + 0.5 * adversarial_loss(fake, valid), logits


def test_segmenter_step_leaves_the_frozen_discriminator_alone() -> None:
    segmenter, discriminator, images, labels = _setup()
    d_before, s_before = _snapshot(discriminator), _snapshot(segmenter)
    optimizer = torch.optim.SGD(segmenter.parameters(), lr=0.1, momentum=0.9)
    with frozen(discriminator):
        loss, _ = _segmenter_loss(segmenter, discriminator, images, labels)
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in discriminator.parameters())
    assert _unchanged(discriminator, d_before)
    assert not _unchanged(segmenter, s_before)
    # after the block D trains again
    assert all(p.requires_grad for p in discriminator.parameters())


def test_without_freezing_the_segmenter_loss_would_reach_d() -> None:
    # the control that shows the test above can fail
    segmenter, discriminator, images, labels = _setup()
    loss, _ = _segmenter_loss(segmenter, discriminator, images, labels)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())


def test_discriminator_step_leaves_the_segmenter_alone() -> None:
    segmenter, discriminator, images, labels = _setup()
    with frozen(discriminator):
        _, logits = _segmenter_loss(segmenter, discriminator, images, labels)
    real, valid = one_hot(labels, NUM_CLASSES)
    s_before, d_before = _snapshot(segmenter), _snapshot(discriminator)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-2, betas=(0.9, 0.99))
    loss = discriminator_loss(discriminator(real), discriminator(torch.softmax(logits, dim=1).detach()), valid)
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in segmenter.parameters())
    assert _unchanged(segmenter, s_before)
    assert not _unchanged(discriminator, d_before)


def test_semi_supervised_loss_sends_no_gradient_into_d() -> None:
    # the confidence mask is a constant: even an unfrozen D receives nothing from L_semi
    segmenter, discriminator, images, _ = _setup()
    logits = segmenter(images)
    d_logits = discriminator(torch.softmax(logits, dim=1))
    loss, _ = semi_supervised_loss(logits, d_logits, threshold=0.0)
    loss.backward()
    assert all(p.grad is None for p in discriminator.parameters())
    assert all(p.grad is not None for p in segmenter.parameters())
