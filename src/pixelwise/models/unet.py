"""A small plain U-Net (Ronneberger et al. 2015): fast enough to train on a CPU in tests and demos.

Width 16 and depth 4 (the defaults) give 1.9 M parameters and an output stride of 16; it has no
pretrained weights and needs none for the small built-in datasets.
"""

from __future__ import annotations

import torch
from torch import nn


def double_convolution(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3 convolutions, each with BatchNorm and ReLU: one U-Net level. (N, in, H, W) -> (N, out, H, W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallUNet(nn.Module):
    """U-Net with ``depth`` poolings, channels ``width · 2^level``; transposed-convolution upsampling.

    Input (N, in_channels, H, W) with H, W divisible by 2^depth (``create_model`` pads for you);
    output (N, num_classes, H, W) logits.
    """

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        channels = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        previous = in_channels
        for count in channels:
            self.down.append(double_convolution(previous, count))
            previous = count
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(channels[level + 1], channels[level], 2, stride=2) for level in reversed(range(depth))
        )
        # after concatenating the skip, twice the channels of the level come in
        self.up = nn.ModuleList(
            double_convolution(2 * channels[level], channels[level]) for level in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        skips = []
        features = images
        for level, block in enumerate(self.down):
            if level > 0:
                features = self.pool(features)
            features = block(features)
            skips.append(features)
        skips.pop()  # the bottleneck is the decoder's input, not a skip
        for upsample, block in zip(self.upsample, self.up, strict=True):
            features = block(torch.cat([skips.pop(), upsample(features)], dim=1))
        return self.classifier(features)
