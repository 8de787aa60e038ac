"""The fully convolutional network of Long, Shelhamer and Darrell (FCN-8s), on any smp encoder.

Per pixel, class scores are a 1×1 convolution of encoder features (``p = softmax(W·x + b)``); the coarse
stride-32 scores are upsampled ×2 and summed with scores from the stride-16 features, again ×2 with the
stride-8 scores, then ×8 to the input. The skips put back the spatial detail the deep scores lack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bilinear_kernel(channels: int, size: int) -> torch.Tensor:
    """(channels, channels, size, size) transposed-convolution weights that upsample bilinearly, per channel.

    >>> bilinear_kernel(1, 4)[0, 0, 1]
    tensor([0.1875, 0.5625, 0.5625, 0.1875])
    """
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    kernel = torch.zeros(channels, channels, size, size)
    kernel[range(channels), range(channels)] = torch.outer(ramp, ramp)
    return kernel


class FCN(nn.Module):
    """FCN-8s: encoder, a small convolutional block on the deepest features, 1×1 class scores, fused skips.

    Input (N, in_channels, H, W) with H, W divisible by 32 (``create_model`` pads for you); output
    (N, num_classes, H, W) logits.

    Following the paper, the ×2 upsamplings are learned transposed convolutions that start as bilinear
    interpolation, the final ×8 is fixed bilinear, and the skip score layers start at zero so training
    begins from the single-stream (FCN-32s) network and learns how much detail each skip adds.
    """

    def __init__(self, *, encoder: str, num_classes: int, in_channels: int, head_channels: int = 256) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.encoder = smp.encoders.get_encoder(encoder, in_channels=in_channels, depth=5, weights=None)
        channels = self.encoder.out_channels  # input, then strides 2, 4, 8, 16, 32
        if head_channels > 0:
            # the paper's fc6/fc7, kept small: more context per pixel before scoring the deepest features
            self.head: nn.Module = nn.Sequential(
                nn.Conv2d(channels[5], head_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(head_channels),
                nn.ReLU(inplace=True),
                nn.Dropout2d(0.1),
            )
            deepest = head_channels
        else:
            self.head = nn.Identity()
            deepest = channels[5]
        self.score32 = nn.Conv2d(deepest, num_classes, 1)
        self.score16 = nn.Conv2d(channels[4], num_classes, 1)
        self.score8 = nn.Conv2d(channels[3], num_classes, 1)
        for skip in (self.score16, self.score8):
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)  # type: ignore[arg-type]  # Conv2d(bias=True) has a bias
        self.up32 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
        self.up16 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
        for upsample in (self.up32, self.up16):
            upsample.weight.data.copy_(bilinear_kernel(num_classes, 4))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)
        scores = self.up32(self.score32(self.head(features[5]))) + self.score16(features[4])
        scores = self.up16(scores) + self.score8(features[3])
        return F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)
