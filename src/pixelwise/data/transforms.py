"""Paired image + mask transforms for training and evaluation, on torchvision.transforms.v2.

The image travels as a ``tv_tensors.Image`` and the mask as a ``tv_tensors.Mask``, so every geometric
transform moves both the same way and resamples the mask with nearest neighbour (never blending two class
indices into a third). Pixels that a rotation, a zoom-out or the padding of a small image brings in get
``ignore_index`` in the mask: they count in neither the loss nor the metrics.

Inputs are what ``pixelwise.data.io`` gives: image (H, W, C) float32 in [0, 1], mask (H, W) uint8.
Outputs are tensors: image (C, h, w) float32, standardised; mask (h, w) int64.

>>> import numpy as np
>>> transform = training_transform(crop_size=8, mean=(0.5,), std=(0.25,), ignore_index=255)
>>> image, mask = transform(np.zeros((5, 6, 1), np.float32), np.ones((5, 6), np.uint8))
>>> tuple(image.shape), tuple(mask.shape), mask.dtype
((1, 8, 8), (8, 8), torch.int64)
>>> sorted(mask.unique().tolist())        # the 5 x 6 image, padded to 8 x 8 with ignore_index
[1, 255]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from pixelwise.data.classes import IGNORE_INDEX


def to_tv_tensors(image: np.ndarray, mask: np.ndarray | None) -> tuple[tv_tensors.Image, tv_tensors.Mask | None]:
    """(H, W, C) float array and (H, W) integer array -> Image (C, H, W) and Mask (H, W)."""
    if image.ndim != 3:
        raise ValueError(f"expected an image (H, W, C), got shape {image.shape}")
    image_tensor = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1))
    if mask is None:
        return image_tensor, None
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {image.shape} differ in size")
    return image_tensor, tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(mask)))


class PairedTransform:
    """Applies a v2 pipeline to an image and its mask together; a missing mask becomes an all-valid one.

    Called with image (H, W, C) float and mask (H, W) int or None; returns image (C, h, w) float32 and mask
    (h, w) int64. Without a mask (unlabeled images) the returned mask is 0 where the pixel came from the
    image and ``ignore_index`` where a transform made it up, i.e. a validity map.
    """

    def __init__(self, transforms: Sequence[v2.Transform], *, ignore_index: int) -> None:
        self.pipeline = v2.Compose(list(transforms))
        self.ignore_index = ignore_index

    def __call__(self, image: np.ndarray, mask: np.ndarray | None) -> tuple[Tensor, Tensor]:
        image_tensor, mask_tensor = to_tv_tensors(image, mask)
        if mask_tensor is None:
            mask_tensor = tv_tensors.Mask(torch.zeros(image_tensor.shape[-2:], dtype=torch.uint8))
        out_image, out_mask = self.pipeline(image_tensor, mask_tensor)
        return out_image.as_subclass(Tensor), out_mask.as_subclass(Tensor).long()

    def __repr__(self) -> str:
        return f"PairedTransform({self.pipeline})"


def training_transform(
    *,
    crop_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    ignore_index: int = IGNORE_INDEX,
    scale_range: tuple[float, float] = (0.75, 1.25),
    rotation: float = 10.0,
    horizontal_flip: bool = True,
    vertical_flip: bool = False,
    color_jitter: float = 0.2,
) -> PairedTransform:
    """Colour jitter, random scale and rotation, a random crop of ``crop_size`` (padded when the image is
    smaller), flips, then standardisation.

    Scale and rotation are one affine resampling (one interpolation instead of two). The crop pads with 0
    in the image and ``ignore_index`` in the mask, so images of different sizes batch together.
    """
    steps = _training_steps(
        crop_size=crop_size,
        ignore_index=ignore_index,
        scale_range=scale_range,
        rotation=rotation,
        horizontal_flip=horizontal_flip,
        vertical_flip=vertical_flip,
        color_jitter=color_jitter,
    )
    return PairedTransform([*steps, v2.Normalize(mean=list(mean), std=list(std))], ignore_index=ignore_index)


def _training_steps(
    *,
    crop_size: int,
    ignore_index: int,
    scale_range: tuple[float, float],
    rotation: float,
    horizontal_flip: bool,
    vertical_flip: bool,
    color_jitter: float,
) -> list[v2.Transform]:
    fill = {tv_tensors.Image: 0.0, tv_tensors.Mask: ignore_index}
    steps: list[v2.Transform] = []
    if color_jitter > 0:
        # first, so that contrast is judged on the image and not on the padding; saturation is a no-op on
        # grey images, so the same pipeline serves 1 and 3 channels
        steps.append(BandColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    if rotation > 0 or scale_range != (1.0, 1.0):
        steps.append(v2.RandomAffine(degrees=rotation, scale=scale_range, fill=fill))
    steps.append(v2.RandomCrop(crop_size, pad_if_needed=True, fill=fill))
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    if vertical_flip:
        steps.append(v2.RandomVerticalFlip())
    return steps


class BandColorJitter(v2.ColorJitter):
    """torchvision's ColorJitter for grey and RGB images (the same draws, the same result), and for images of
    other band counts, which torchvision refuses, its brightness and contrast over all bands and its
    saturation as the spread of the bands around their mean; no hue (a multispectral image has none)."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Image) or inpt.shape[-3] in (1, 3):
            return super().transform(inpt, params)
        image = inpt.as_subclass(Tensor)
        for function in params["fn_idx"].tolist():
            if function == 0 and params["brightness_factor"] is not None:
                image = (image * params["brightness_factor"]).clamp(0, 1)
            elif function == 1 and params["contrast_factor"] is not None:
                mean = image.mean(dim=(-3, -2, -1), keepdim=True)
                image = (mean + params["contrast_factor"] * (image - mean)).clamp(0, 1)
            elif function == 2 and params["saturation_factor"] is not None:
                grey = image.mean(dim=-3, keepdim=True)
                image = (grey + params["saturation_factor"] * (image - grey)).clamp(0, 1)
        return tv_tensors.wrap(image, like=inpt)


def strong_augmentation() -> v2.Compose:
    """The photometric half of FixMatch's strong view, as UniMatch sets it: colour jitter (0.5, 0.5, 0.5, 0.25)
    with probability 0.8, grey with 0.2, Gaussian blur (σ 0.1–2) with 0.5. On images in [0, 1], before
    standardisation; hue, saturation and grey leave 1-channel images alone. (CutMix, the other half, mixes
    whole batches: ``pixelwise.train.semi``.)"""
    return v2.Compose(
        [
            v2.RandomApply([v2.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.25)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0))], p=0.5),
        ]
    )


class WeakStrongTransform:
    """Two views of one random crop for FixMatch: the training transform's (weak) and the same crop
    strongly recoloured and blurred (``strong_augmentation``).

    Called like ``PairedTransform``; returns (weak image, mask or validity map, strong image), the images
    (C, h, w) float32 standardised alike. The geometry is drawn once, so the two views align pixel for pixel.
    """

    def __init__(self, geometric: PairedTransform, strong: v2.Transform, normalize: v2.Normalize) -> None:
        self.geometric = geometric
        self.strong = strong
        self.normalize = normalize

    def __call__(self, image: np.ndarray, mask: np.ndarray | None) -> tuple[Tensor, Tensor, Tensor]:
        crop, out_mask = self.geometric(image, mask)
        strong = self.strong(tv_tensors.Image(crop)).as_subclass(Tensor)
        return self.normalize(crop), out_mask, self.normalize(strong)

    def __repr__(self) -> str:
        return f"WeakStrongTransform({self.geometric}, strong={self.strong})"


def weak_and_strong_transform(
    *,
    crop_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    ignore_index: int = IGNORE_INDEX,
    scale_range: tuple[float, float] = (0.75, 1.25),
    rotation: float = 10.0,
    horizontal_flip: bool = True,
    vertical_flip: bool = False,
    color_jitter: float = 0.2,
) -> WeakStrongTransform:
    """``training_transform``'s crop as the weak view, plus a strong view of the same crop (FixMatch).

    >>> transform = weak_and_strong_transform(crop_size=8, mean=(0.5,), std=(0.25,))
    >>> weak, validity, strong = transform(np.full((8, 8, 1), 0.5, np.float32), None)
    >>> weak.shape == strong.shape == (1, 8, 8), validity.shape
    (True, torch.Size([8, 8]))
    """
    steps = _training_steps(
        crop_size=crop_size,
        ignore_index=ignore_index,
        scale_range=scale_range,
        rotation=rotation,
        horizontal_flip=horizontal_flip,
        vertical_flip=vertical_flip,
        color_jitter=color_jitter,
    )
    geometric = PairedTransform(steps, ignore_index=ignore_index)
    return WeakStrongTransform(geometric, strong_augmentation(), v2.Normalize(mean=list(mean), std=list(std)))


def evaluation_transform(
    *, mean: Sequence[float], std: Sequence[float], ignore_index: int = IGNORE_INDEX
) -> PairedTransform:
    """Standardisation only: evaluation sees the whole image at its own size."""
    return PairedTransform([v2.Normalize(mean=list(mean), std=list(std))], ignore_index=ignore_index)
