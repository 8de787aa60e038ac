"""What the segmenter learns from unlabeled images: Hung et al.'s terms, self-training, FixMatch.

One function, ``unlabeled_loss``, called by the Trainer inside the segmenter's step (D frozen), with the
run's ``train.networks.Networks`` (S and D as the step calls them) and an unlabeled batch of weak crops and
their validity maps (and, for FixMatch, strong views of the same crops):

- **Hung et al. 2018**: ``λ_adv,u · BCE(D(P_u), 1)`` and ``λ_semi · CE(S(X_u), argmax P_u)`` over the pixels
  whose confidence passes ``T_semi``. The confidence is D's ``σ(D(P_u))`` or, with ``semi_trust = softmax``,
  the max softmax (plain self-training: does D's confidence add anything?). As in the official code, nothing
  is backpropagated from an unlabeled batch in which no pixel is trusted once ``L_semi`` is on.
- **FixMatch** (Sohn et al. 2020, in UniMatch's form for segmentation): the weak view's argmax, no gradient,
  teaches the strong view (colour, grey, blur: ``data.transforms.strong_augmentation``; CutMix across the
  batch: ``cutmix``) where the weak view's max softmax exceeds ``fixmatch_threshold``; the mean is over all
  valid pixels, so a batch the model is unsure of teaches little.

It also returns the batch's prediction, detached, for D's step: unlabeled predictions are fakes too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pixelwise.adversarial.objectives import (
    adversarial_loss,
    confident_pixels,
    pseudo_label_loss,
    trusted_pixels,
)
from pixelwise.train.data import derived_seed
from pixelwise.train.networks import Networks

_CUTMIX = 0xC07  # the key of CutMix's random stream (with the seed and the iteration)


@dataclass(frozen=True)
class Predicted:
    """A detached prediction for D's step: P (N, K, h, w), its valid pixels (N, h, w) bool, and the images
    (N, C, h, w) an image-conditioned D also sees."""

    probabilities: Tensor
    valid: Tensor
    images: Tensor


def wants_unlabeled(networks: Networks) -> bool:
    """Some term of this step learns from the unlabeled batch: L_adv,u (with D), L_semi once on, FixMatch."""
    config = networks.config
    adversarial = networks.discriminator is not None and config.adversarial_weight_unlabeled > 0
    return (adversarial and config.adversarial_weight > 0) or networks.semi_active or config.fixmatch_weight > 0


def unlabeled_loss(
    networks: Networks, batch: tuple[Tensor, ...]
) -> tuple[Tensor, dict[str, Tensor | float], Predicted | None]:
    """The unlabeled terms of one segmenter step: (loss to backpropagate, stats, the fake for D or None).

    ``batch`` is (images, validity) or (weak images, validity, strong images), validity ``ignore_index`` on
    padding, which never counts and is never trusted.
    """
    config, discriminator = networks.config, networks.discriminator
    images, validity = networks.to_device(batch[0]), batch[1].to(networks.device)
    valid = validity != networks.ignore_index
    semi = networks.semi_active
    adversarial = (
        discriminator is not None and config.adversarial_weight > 0 and config.adversarial_weight_unlabeled > 0
    )
    stats: dict[str, Tensor | float] = {}
    loss: Tensor | None = None
    if semi or adversarial:  # the weak view with a gradient
        logits = networks.segment(images)
    else:  # only FixMatch's pseudo-labels (and D's fakes) need it
        with torch.no_grad():
            logits = networks.segment(images)
    probabilities = logits.softmax(dim=1)
    d_logits = None
    if discriminator is not None and (semi or adversarial):
        d_logits = networks.judge(networks.shown_to_d(probabilities, valid), images)
    trusted_any = True
    if semi:
        confidence = (
            torch.sigmoid(d_logits.detach()[:, 0])
            if d_logits is not None and config.semi_trust == "discriminator"
            else probabilities.detach().amax(dim=1)
        )
        trusted, fraction = confident_pixels(confidence, valid, threshold=config.semi_threshold)
        semi_term = pseudo_label_loss(logits, trusted)
        loss = config.semi_weight * semi_term
        stats["semi_loss"], stats["semi_fraction"] = semi_term.detach(), fraction
        trusted_any = fraction > 0
    elif d_logits is not None:  # logged all the same: how far D is from trusting S before the term starts
        stats["semi_fraction"] = trusted_pixels(d_logits.detach(), valid, threshold=config.semi_threshold)[1]
    if adversarial and trusted_any:  # the official code backpropagates nothing when no pixel is trusted
        assert d_logits is not None
        adversarial_term = adversarial_loss(d_logits, valid)
        loss = config.adversarial_weight_unlabeled * adversarial_term + (0.0 if loss is None else loss)
        stats["unlabeled_adversarial_loss"] = adversarial_term.detach()
    if config.fixmatch_weight > 0:
        if len(batch) < 3:
            raise ValueError(
                "fixmatch_weight > 0 needs unlabeled batches with a strong view (weak_and_strong_transform)"
            )
        generator = torch.Generator().manual_seed(derived_seed(config.seed, _CUTMIX, networks.iteration))
        fixmatch, fraction = fixmatch_loss(
            networks, networks.to_device(batch[2]), logits.detach(), valid, generator=generator
        )
        loss = config.fixmatch_weight * fixmatch + (0.0 if loss is None else loss)
        stats["fixmatch_loss"], stats["fixmatch_fraction"] = fixmatch.detach(), fraction
    fake = None
    if discriminator is not None and config.discriminator_unlabeled_fakes:
        fake = Predicted(probabilities.detach(), valid, images)
    return (logits.sum() * 0.0 if loss is None else loss), stats, fake


def fixmatch_loss(
    networks: Networks, strong: Tensor, weak_logits: Tensor, valid: Tensor, *, generator: torch.Generator
) -> tuple[Tensor, float]:
    """``CE(S(CutMix(strong)), CutMix(argmax P_weak))`` over the pixels whose weak max softmax passes the
    threshold, divided by the count of valid pixels; also the trusted share of the valid pixels."""
    boxes = cutmix_boxes(strong.shape[0], strong.shape[-2:], generator=generator).to(strong.device)
    weak = weak_logits.softmax(dim=1)
    mixed_images, confidence, labels, valid = cutmix(boxes, strong, weak.amax(dim=1), weak.argmax(dim=1), valid)
    trusted, fraction = confident_pixels(confidence, valid, threshold=networks.config.fixmatch_threshold)
    logits = networks.segment(mixed_images)
    losses = F.cross_entropy(logits, labels, reduction="none")
    count = int(valid.sum())
    if count == 0:
        return logits.sum() * 0.0, fraction
    return torch.where(trusted, losses, 0.0).sum() / count, fraction


def cutmix(boxes: Tensor, *batches: Tensor) -> tuple[Tensor, ...]:
    """Each batch (N, ...) with image i's box (``boxes`` (N, H, W) bool) filled from image i − 1 of the same
    batch: images, pseudo-labels, confidences and validity mixed alike.

    >>> images = torch.arange(2.0).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    >>> boxes = torch.tensor([[[True, False], [False, False]], [[False] * 2] * 2])
    >>> cutmix(boxes, images)[0][:, 0].tolist()
    [[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]
    """
    partner = torch.roll(torch.arange(boxes.shape[0], device=boxes.device), 1)
    mixed = []
    for batch in batches:
        inside = boxes.view(boxes.shape[0], *([1] * (batch.ndim - 3)), *boxes.shape[1:])
        mixed.append(torch.where(inside, batch[partner], batch))
    return tuple(mixed)


def cutmix_boxes(
    count: int,
    size: torch.Size | tuple[int, int],
    *,
    generator: torch.Generator,
    probability: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    aspect: tuple[float, float] = (0.3, 1 / 0.3),
) -> Tensor:
    """CutMix's boxes for a batch, UniMatch's settings: (count, H, W) bool, True inside image i's box.

    Each image gets a box with ``probability``; its area is a uniform fraction of the image in ``area``, its
    aspect (height / width) uniform in ``aspect``, its place uniform where it fits.

    >>> boxes = cutmix_boxes(64, (32, 32), generator=torch.Generator().manual_seed(0))
    >>> 0.3 < boxes.flatten(1).any(dim=1).float().mean().item() < 0.7      # about half the images get one
    True
    """
    height, width = int(size[0]), int(size[1])
    boxes = torch.zeros(count, height, width, dtype=torch.bool)
    draws = torch.rand(count, 5, generator=generator, dtype=torch.float64).tolist()
    for index, (chance, share, shape, top, left) in enumerate(draws):
        if chance >= probability:
            continue
        pixels = (area[0] + share * (area[1] - area[0])) * height * width
        ratio = aspect[0] + shape * (aspect[1] - aspect[0])
        box_height = max(1, min(height, round((pixels * ratio) ** 0.5)))
        box_width = max(1, min(width, round((pixels / ratio) ** 0.5)))
        row = int(top * (height - box_height + 1))
        column = int(left * (width - box_width + 1))
        boxes[index, row : row + box_height, column : column + box_width] = True
    return boxes
