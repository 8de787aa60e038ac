"""What the terms that plug into the Trainer call: S's and D's forward passes as the run makes them.

``Trainer.networks()`` gives a ``Networks`` record: the segmenter and the discriminator (wrapped for
training, or with ``raw=True`` the bare networks validation uses), the device, the run's precision, the
config and the iteration. The semi-supervised terms (``train.semi``) and the pseudo-label check
(``train.pseudo_labels``) take this record, never the Trainer itself, so that neither imports the Trainer
and the Trainer's own helpers stay its own. The Trainer's steps use the same record, so that a batch
reaches the device, and D sees a prediction, the same way everywhere.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pixelwise.train.config import TrainConfig


@dataclass(frozen=True)
class Networks:
    """S and D of one run at one iteration, and how a batch is put before them.

    ``segmenter`` maps images (N, C, h, w) on ``device`` to logits (N, K, h, w); ``discriminator`` (None in a
    run without D) maps class maps (N, K, h, w), and with ``discriminator_image`` the images, to logits
    (N, 1, h', w').
    """

    config: TrainConfig
    segmenter: nn.Module
    discriminator: nn.Module | None
    device: torch.device
    ignore_index: int
    iteration: int
    amp_dtype: torch.dtype | None = None  # what autocast computes in with ``amp``; None: float32

    @property
    def semi_active(self) -> bool:
        """L_semi is on: a weight, and ``semi_start`` iterations done."""
        return self.config.semi_weight > 0 and self.iteration >= self.config.semi_start

    def to_device(self, images: Tensor) -> Tensor:
        """Images (N, C, h, w) on the device, in the memory layout the run trains in."""
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.config.channels_last else images

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The run's mixed precision (``amp``), or nothing."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def segment(self, images: Tensor) -> Tensor:
        """S's logits (N, K, h, w) in float32 for images already on the device."""
        with self.autocast():
            logits = self.segmenter(images)
        return logits.float()

    def shown_to_d(self, probabilities: Tensor, valid: Tensor) -> Tensor:
        """A prediction as D sees it: zero where the real maps are zero, unless the fix is switched off."""
        from pixelwise.adversarial.objectives import zero_invalid

        return zero_invalid(probabilities, valid) if self.config.discriminator_masked_fakes else probabilities

    def judge(self, maps: Tensor, images: Tensor) -> Tensor:
        """D's logits (N, 1, h', w') in float32 on class maps (N, K, h, w) (with the images when D is
        conditioned on them)."""
        assert self.discriminator is not None
        condition = (images,) if self.config.discriminator_image else ()
        with self.autocast():
            logits = self.discriminator(maps, *condition)
        return logits.float()
