"""Adversarial segmentation (Hung et al., 2018): the discriminator and the adversarial / semi-supervised losses."""

from pixelwise.adversarial.discriminator import Discriminator
from pixelwise.adversarial.objectives import (
    adversarial_loss,
    discriminator_accuracy,
    discriminator_loss,
    frozen,
    one_hot,
    semi_supervised_loss,
    smooth_one_hot,
)

__all__ = [
    "Discriminator",
    "adversarial_loss",
    "discriminator_accuracy",
    "discriminator_loss",
    "frozen",
    "one_hot",
    "semi_supervised_loss",
    "smooth_one_hot",
]
