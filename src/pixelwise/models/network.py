"""The wrapper that lets any network take images of any size: reflect-pad to its stride, run, crop back.

>>> network = SegmentationNetwork(torch.nn.Conv2d(1, 2, 1), stride=32, spec={"num_classes": 2, "in_channels": 1})
>>> network(torch.zeros(1, 1, 37, 50)).shape
torch.Size([1, 2, 37, 50])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.padding import pad_amounts, pad_mode

__all__ = ["SegmentationNetwork", "pad_amounts"]


class SegmentationNetwork(nn.Module):
    """Wraps a network that needs sizes divisible by ``stride``: pad (reflect), run, crop the logits back.

    Input (N, C, H, W) float; output (N, K, H, W) logits for any H, W ≥ 1. ``spec`` holds the
    ``create_model`` arguments that rebuild the same architecture (``create_model(**model.spec)``), which
    is what a checkpoint stores; ``normalization`` is the (mean, std) a pretrained encoder expects, or None.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        stride: int,
        spec: dict[str, Any],
        normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.stride = stride
        self.spec = dict(spec)
        self.normalization = normalization

    @property
    def num_classes(self) -> int:
        return int(self.spec["num_classes"])

    @property
    def in_channels(self) -> int:
        return int(self.spec["in_channels"])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2], images.shape[-1]
        top, bottom = pad_amounts(height, multiple=self.stride)
        left, right = pad_amounts(width, multiple=self.stride)
        if top or bottom or left or right:
            mode = pad_mode(height, width, (top, bottom), (left, right))
            padded = F.pad(images, (left, right, top, bottom), mode=mode)
            if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last):
                # F.pad returns NCHW; keep the layout the caller chose for speed
                padded = padded.contiguous(memory_format=torch.channels_last)
            cropped: torch.Tensor = self.network(padded)[..., top : top + height, left : left + width]
            return cropped
        logits: torch.Tensor = self.network(images)
        return logits
