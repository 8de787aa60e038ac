"""The pseudo-label check: trusted vs untrusted accuracy and the AUROCs, by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from pixelwise.data.transforms import evaluation_transform
from pixelwise.train.config import TrainConfig
from pixelwise.train.pseudo_labels import pseudo_label_quality
from pixelwise.train.trainer import build_trainer

from .conftest import Sample, TinyData, make_data


class Oracle(nn.Module):
    """A 'segmenter' whose prediction is read from the image: channel 0 holds the class it says (0 or 1) and
    how sure it is (class + confidence / 10), so each pixel's answer and confidence are set by hand."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        said = images[:, 0].floor()
        sure = (images[:, 0] - said) * 10  # in [0, 1)
        logit = torch.logit(0.5 + sure.clamp(0.0, 0.98) / 2) / 2  # softmax of (l, -l) = σ(2l) = 0.5 + sure / 2
        return torch.stack([torch.where(said == 0, logit, -logit), torch.where(said == 1, logit, -logit)], dim=1)


def data(said: np.ndarray, sure: np.ndarray, truth: np.ndarray) -> TinyData:
    image = (said + sure / 10).astype(np.float32)[..., None]
    sample = Sample(image, truth.astype(np.uint8), "x", Path("x.png"))
    return TinyData([sample], make_data(1, seed=0, num_classes=2).classes, 1)


def quality(config: TrainConfig, samples: TinyData, discriminator: Any = None) -> dict[str, float]:
    trainer = build_trainer(config, classes=samples.classes, in_channels=1, total_iterations=1)
    trainer.raw_model = Oracle()
    trainer.raw_discriminator = discriminator
    return pseudo_label_quality(trainer.networks(raw=True), samples, evaluation_transform(mean=[0.0], std=[1.0]))


def test_sure_and_right_against_unsure_and_wrong() -> None:
    # 4 pixels sure (p = 0.99) and right, 4 unsure (p = 0.6) and wrong, 1 ignored
    said = np.array([[0, 1, 0, 1, 0, 1, 0, 1, 0]])
    sure = np.array([[0.98] * 4 + [0.2] * 4 + [0.98]])
    truth = np.where(np.arange(9) < 4, said, 1 - said).astype(np.uint8)
    truth[0, 8] = 255
    result = quality(TrainConfig(fixmatch_weight=1.0, fixmatch_threshold=0.95), data(said, sure, truth))
    assert result["pseudo_trusted_fraction"] == 0.5
    assert result["pseudo_accuracy_trusted"] == 1.0 and result["pseudo_accuracy_untrusted"] == 0.0
    assert result["pseudo_auroc_softmax"] == 1.0 and "pseudo_auroc_discriminator" not in result


class Backwards(nn.Module):
    """A D whose confidence is the *opposite* of the softmax's: it prefers the unsure pixels."""

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:
        return -(probabilities.amax(dim=1, keepdim=True) - 0.75) * 20


def test_d_s_confidence_is_scored_on_the_same_pixels() -> None:
    said = np.array([[0, 1, 0, 1, 1, 0]])
    sure = np.array([[0.9, 0.8, 0.7, 0.3, 0.2, 0.1]])
    truth = np.array([[0, 1, 0, 0, 0, 0]])  # right where sure; wrong at pixels 3 and 4; pixel 5 right, unsure
    config = TrainConfig(adversarial_weight=0.01, semi_weight=0.1, semi_threshold=0.5)
    result = quality(config, data(said, sure, truth), Backwards())
    # 4 right × 2 wrong pixels = 8 pairs; the softmax ranks right above wrong in 6 (pixels 0-2 above 3 and 4,
    # pixel 5 below both): AUROC 6/8; D's reversed ranking gets the other 2
    assert result["pseudo_auroc_softmax"] == pytest.approx(6 / 8)
    assert result["pseudo_auroc_discriminator"] == pytest.approx(2 / 8)
    # L_semi trusts D here: σ(D) > 0.5 where the max softmax is below 0.75, i.e. sure < 0.5
    assert result["pseudo_trusted_fraction"] == 0.5
    assert result["pseudo_accuracy_trusted"] == pytest.approx(1 / 3)
    assert result["pseudo_accuracy_untrusted"] == 1.0


def test_an_undecidable_ranking_is_nan() -> None:
    said = np.array([[0, 1]])
    result = quality(TrainConfig(fixmatch_weight=1.0), data(said, np.array([[0.9, 0.1]]), said))
    assert math.isnan(result["pseudo_auroc_softmax"]) and result["pseudo_accuracy_trusted"] == 1.0
