"""The fully convolutional discriminator of Hung et al. (2018): per pixel, is this class map real or predicted?

Five 4×4 convolutions with stride 2 (channels 64, 128, 256, 512, 1, scaled by ``base_channels / 64``),
LeakyReLU(0.2) between them and no batch norm; the 1-channel output is upsampled bilinearly to the input
size and read as the logit of "real" (a ground-truth one-hot map) at every pixel.

On small crops five stride-2 layers leave too little: a 32² crop ends as a 1×1 map, one verdict for every
pixel of it (Hung et al.'s 321² crops give 11×11). ``downsamplings`` says how many of the five layers halve
the map; the others keep it (stride 1, same 4×4 kernels and widths). ``downsamplings_for`` picks the most
that keep a given map side on a given crop, so the paper's D is unchanged on its own crops.

Optionally conditioned on the image (Luc et al., 2016): the image is concatenated with the probability map
along the channel axis. Concatenation was chosen over the "product" variant (each image channel times each
class map) because it keeps the input width at K + C instead of K·C and lets the first convolution learn any
product it needs; Luc et al. report the variants within a point of each other.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

KERNEL = 4
STRIDE = 2
LAYERS = 5  # four hidden convolutions and the classifier


def _same_padding(size: int, stride: int = STRIDE) -> tuple[int, int]:
    """Zero padding (before, after) so that a 4×4 convolution of ``stride`` gives ceil(size / stride) outputs.

    For stride 2 and even sizes this is (1, 1), exactly the ``padding=1`` of the published discriminator; odd
    sizes get one extra row or column after, so that no size ever shrinks to zero (17 -> 9 -> 5 -> 3 -> 2 -> 1).
    Stride 1 pads (1, 2): the size is kept.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + KERNEL - size, 0)
    return total // 2, total - total // 2


def downsamplings_for(crop_size: int, *, min_map: int) -> int:
    """How many of D's five layers may halve the map so that a ``crop_size`` crop keeps ``min_map`` logits a side.

    ``min_map = 0`` (or a large crop) gives the paper's five.

    >>> [downsamplings_for(size, min_map=8) for size in (32, 96, 128, 321)]
    [2, 3, 4, 5]
    >>> map_side(96, downsamplings_for(96, min_map=8)), map_side(321, 5)
    (12, 11)
    """
    count = 0
    while count < LAYERS and map_side(crop_size, count + 1) >= min_map:
        count += 1
    return count


def map_side(size: int, downsamplings: int) -> int:
    """The side of D's map, before upsampling, for an input side ``size``: halved (rounding up) per downsampling."""
    for _ in range(downsamplings):
        size = -(-size // STRIDE)
    return size


class Discriminator(nn.Module):
    """Per-pixel real/fake logits for class-probability maps (N, K, H, W) (+ image (N, C, H, W)) -> (N, 1, H, W).

    ``num_classes`` K is the channel count of the maps; ``image_channels`` C > 0 makes the discriminator
    image-conditioned (``forward`` then needs the image); ``base_channels`` is the width of the first layer
    (64 in the paper; smaller for CPU experiments); ``downsamplings`` (0 to 5) how many layers, the first
    ones, have stride 2 (5 in the paper). Works for any H, W >= 1.

    >>> d = Discriminator(3, base_channels=8)
    >>> d(torch.softmax(torch.randn(2, 3, 17, 23), dim=1)).shape
    torch.Size([2, 1, 17, 23])
    """

    def __init__(
        self, num_classes: int, *, image_channels: int = 0, base_channels: int = 64, downsamplings: int = LAYERS
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if image_channels < 0:
            raise ValueError(f"image_channels must be >= 0, got {image_channels}")
        if base_channels < 1:
            raise ValueError(f"base_channels must be >= 1, got {base_channels}")
        if not 0 <= downsamplings <= LAYERS:
            raise ValueError(f"downsamplings must lie in 0..{LAYERS}, got {downsamplings}")
        self.num_classes = num_classes
        self.image_channels = image_channels
        self.base_channels = base_channels
        self.downsamplings = downsamplings
        widths = [num_classes + image_channels, base_channels, 2 * base_channels, 4 * base_channels, 8 * base_channels]
        strides = [STRIDE if layer < downsamplings else 1 for layer in range(LAYERS)]
        # padding is applied by hand in forward (size-dependent, see _same_padding), hence padding=0 here
        self.strides = strides
        self.convs = nn.ModuleList(
            [nn.Conv2d(widths[i], widths[i + 1], KERNEL, stride=strides[i]) for i in range(len(widths) - 1)]
        )
        self.classifier = nn.Conv2d(widths[-1], 1, KERNEL, stride=strides[-1])
        self.activation = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, probabilities: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of "real" (N, 1, H, W) for probability maps (N, K, H, W) and, if conditioned, images (N, C, H, W)."""
        coarse = self.coarse(probabilities, image)
        return F.interpolate(coarse, size=probabilities.shape[-2:], mode="bilinear", align_corners=False)

    def coarse(self, probabilities: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """D's own map of logits before upsampling: (N, 1, h, w), ``h = map_side(H, downsamplings)``."""
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
        for conv, stride in zip(self.convs, self.strides, strict=False):
            x = self.activation(conv(_pad(x, stride)))
        return self.classifier(_pad(x, self.strides[-1]))


def discriminator_for_crops(
    num_classes: int, crop_size: int, *, min_map: int, seed: int, image_channels: int = 0, base_channels: int = 64
) -> Discriminator:
    """D for training crops of ``crop_size``: as many stride-2 layers as keep ``min_map`` logits a side.

    Its initial weights come from a generator seeded with ``seed``, the global one left as it was.

    >>> d = discriminator_for_crops(3, 96, min_map=8, seed=0, base_channels=4)
    >>> d.downsamplings, tuple(d.coarse(torch.zeros(1, 3, 96, 96)).shape[-2:])
    (3, (12, 12))
    """
    downsamplings = downsamplings_for(crop_size, min_map=min_map)
    if map_side(crop_size, downsamplings) < min_map:
        logger.warning("crop size %d is below the discriminator's least map side %d", crop_size, min_map)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return Discriminator(
            num_classes, image_channels=image_channels, base_channels=base_channels, downsamplings=downsamplings
        )


def _pad(x: torch.Tensor, stride: int) -> torch.Tensor:
    top, bottom = _same_padding(x.shape[-2], stride)
    left, right = _same_padding(x.shape[-1], stride)
    return F.pad(x, (left, right, top, bottom))
