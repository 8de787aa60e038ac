"""Adversarial segmentation (Hung et al., 2018): the discriminator and the adversarial / semi-supervised losses."""

from pixelwise.adversarial.discriminator import Discriminator, discriminator_for_crops, downsamplings_for
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

__all__ = [
    "Discriminator",
    "adversarial_loss",
    "confident_pixels",
    "discriminator_accuracy",
    "discriminator_for_crops",
    "discriminator_loss",
    "discriminator_losses",
    "downsamplings_for",
    "frozen",
    "one_hot",
    "pseudo_label_loss",
    "semi_supervised_loss",
    "smooth_one_hot",
    "trusted_pixels",
    "zero_invalid",
]
