"""The fully convolutional discriminator of Hung et al. (2018): per pixel, is this class map real or predicted?

Five 4×4 convolutions with stride 2 (channels 64, 128, 256, 512, 1, scaled by ``base_channels / 64``),
LeakyReLU(0.2) between them and no batch norm; the 1-channel output is upsampled bilinearly to the input
size and read as the logit of "real" (a ground-truth one-hot map) at every pixel.

Optionally conditioned on the image (Luc et al., 2016): the image is concatenated with the probability map
along the channel axis. Concatenation was chosen over the "product" variant (each image channel times each
class map) because it keeps the input width at K + C instead of K·C and lets the first convolution learn any
product it needs; Luc et al. report the variants within a point of each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNEL = 4
STRIDE = 2


def _same_padding(size: int) -> tuple[int, int]:
    """Zero padding (before, after) so that a 4×4 stride-2 convolution gives ceil(size / 2) outputs.

    For even sizes this is (1, 1), exactly the ``padding=1`` of the published discriminator; odd sizes get one
    extra row or column after, so that no size ever shrinks to zero (17 -> 9 -> 5 -> 3 -> 2 -> 1).
    """
    out = -(-size // STRIDE)
    total = max((out - 1) * STRIDE + KERNEL - size, 0)
    return total // 2, total - total // 2


class Discriminator(nn.Module):
    """Per-pixel real/fake logits for class-probability maps (N, K, H, W) (+ image (N, C, H, W)) -> (N, 1, H, W).

    ``num_classes`` K is the channel count of the maps; ``image_channels`` C > 0 makes the discriminator
    image-conditioned (``forward`` then needs the image); ``base_channels`` is the width of the first layer
    (64 in the paper; smaller for CPU experiments). Works for any H, W >= 1.

    >>> d = Discriminator(3, base_channels=8)
    >>> d(torch.softmax(torch.randn(2, 3, 17, 23), dim=1)).shape
    torch.Size([2, 1, 17, 23])
    """

    def __init__(self, num_classes: int, *, image_channels: int = 0, base_channels: int = 64) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if image_channels < 0:
            raise ValueError(f"image_channels must be >= 0, got {image_channels}")
        if base_channels < 1:
            raise ValueError(f"base_channels must be >= 1, got {base_channels}")
        self.num_classes = num_classes
        self.image_channels = image_channels
        self.base_channels = base_channels
        widths = [num_classes + image_channels, base_channels, 2 * base_channels, 4 * base_channels, 8 * base_channels]
        # padding is applied by hand in forward (size-dependent, see _same_padding), hence padding=0 here
        self.convs = nn.ModuleList(
            [nn.Conv2d(widths[i], widths[i + 1], KERNEL, stride=STRIDE) for i in range(len(widths) - 1)]
        )
        self.classifier = nn.Conv2d(widths[-1], 1, KERNEL, stride=STRIDE)
        self.activation = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, probabilities: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of "real" (N, 1, H, W) for probability maps (N, K, H, W) and, if conditioned, images (N, C, H, W)."""
        if probabilities.ndim != 4 or probabilities.shape[1] != self.num_classes:
            raise ValueError(
                f"expected class maps of shape (N, {self.num_classes}, H, W), got {tuple(probabilities.shape)}"
            )
        x = probabilities
        if self.image_channels:
            if image is None:
                raise ValueError(
                    f"this discriminator is image-conditioned ({self.image_channels} channels): pass image="
                )
            if image.shape[0] != x.shape[0] or image.shape[1] != self.image_channels or image.shape[2:] != x.shape[2:]:
                raise ValueError(
                    f"image of shape {tuple(image.shape)} does not match class maps {tuple(x.shape)} "
                    f"with {self.image_channels} image channels"
                )
            x = torch.cat([x, image.to(x.dtype)], dim=1)
        elif image is not None:
            raise ValueError(
                "this discriminator is not image-conditioned; build it with image_channels=C to pass an image"
            )
        size = x.shape[-2:]
        for conv in self.convs:
            x = self.activation(conv(self._pad(x)))
        x = self.classifier(self._pad(x))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    @staticmethod
    def _pad(x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_padding(x.shape[-2])
        left, right = _same_padding(x.shape[-1])
        return F.pad(x, (left, right, top, bottom))
