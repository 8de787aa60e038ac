"""Paired transforms: image and mask stay aligned, masks stay labels, padding is ignored, statistics exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelwise.data.transforms import evaluation_transform, training_transform
from pixelwise.train.data import channel_statistics


def blocks(height: int = 40, width: int = 52) -> tuple[np.ndarray, np.ndarray]:
    """An image whose grey level names the class: 0.0, 0.5, 1.0 for classes 0, 1, 2, in large blocks."""
    mask = np.zeros((height, width), np.uint8)
    mask[5:25, 8:30] = 1
    mask[18:36, 30:48] = 2
    return (mask.astype(np.float32) / 2)[..., None], mask


def test_image_and_mask_stay_aligned_through_every_augmentation() -> None:
    image, mask = blocks()
    transform = training_transform(
        crop_size=32, mean=(0.0,), std=(1.0,), scale_range=(0.7, 1.4), rotation=30, vertical_flip=True, color_jitter=0
    )
    torch.manual_seed(0)
    for _ in range(20):
        out_image, out_mask = transform(image, mask)
        assert out_image.shape == (1, 32, 32) and out_mask.shape == (32, 32) and out_mask.dtype == torch.int64
        # nearest neighbour: the mask holds only labels that were there (or ignore), never a blend
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 255}
        valid = out_mask != 255
        # bilinear blurs the image only along the block edges: nearly every pixel still names its label
        agreement = (torch.round(out_image[0] * 2)[valid] == out_mask[valid]).float().mean()
        assert agreement > 0.93


def test_small_images_are_padded_with_ignore_index() -> None:
    image, mask = blocks(10, 12)
    transform = training_transform(crop_size=16, mean=(0.0,), std=(1.0,), scale_range=(1.0, 1.0), rotation=0)
    out_image, out_mask = transform(image, mask)
    assert out_mask.shape == (16, 16)
    assert int((out_mask != 255).sum()) == 10 * 12
    assert out_image[0][out_mask == 255].abs().max() == 0  # padding is 0 before standardisation


def test_unlabeled_images_get_a_validity_map() -> None:
    image, _ = blocks(10, 12)
    transform = training_transform(
        crop_size=16, mean=(0.0,), std=(1.0,), ignore_index=7, rotation=0, scale_range=(1, 1)
    )
    _, validity = transform(image, None)
    assert set(validity.unique().tolist()) == {0, 7}
    assert int((validity == 0).sum()) == 10 * 12


def test_evaluation_standardises_only() -> None:
    image = np.array([[[0.0, 1.0, 0.5], [0.25, 0.5, 1.0]]], np.float32)  # (1, 2, 3)
    mask = np.array([[0, 255]], np.uint8)
    out_image, out_mask = evaluation_transform(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 1.0))(image, mask)
    expected = torch.tensor([[[-1.0, -0.5]], [[2.0, 0.0]], [[0.0, 0.5]]])
    assert torch.allclose(out_image, expected) and out_mask.tolist() == [[0, 255]]


class Item:
    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.mask = None


def test_channel_statistics_are_exact() -> None:
    images = [np.array([[[0.0, 1.0]], [[1.0, 1.0]]], np.float32), np.array([[[0.5, 1.0], [0.5, 1.0]]], np.float32)]
    mean, std = channel_statistics([Item(image) for image in images], [0, 1])
    # channel 0: 0, 1, 0.5, 0.5 -> mean 0.5, std sqrt(0.125); channel 1 is constant -> std 1, not 0
    assert mean == pytest.approx((0.5, 1.0)) and std == pytest.approx((0.125**0.5, 1.0))
