"""Label hiding, the input statistics, and which unlabeled images the adversarial terms get."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwise.data.transforms import evaluation_transform
from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import normalization, unlabeled_dataset

from .conftest import TinyData


def test_labeled_fraction_hides_labels_deterministically(tmp_path: Path) -> None:
    from pixelwise.train.data import split_labeled

    labeled, hidden = split_labeled(16, 0.25, seed=5)
    assert (labeled, hidden) == split_labeled(16, 0.25, seed=5)
    assert len(labeled) == 4 and sorted(labeled + hidden) == list(range(16))
    assert labeled != split_labeled(16, 0.25, seed=6)[0]
    assert split_labeled(3, 0.01, seed=0)[0] != []  # one label is always kept


def test_normalization_is_the_training_set_s_own_unless_the_encoder_is_pretrained(tiny_train: TinyData) -> None:
    own = normalization(TrainConfig(), tiny_train, 1)
    assert 0.2 < own["mean"][0] < 0.5 and 0 < own["std"][0] < 0.5
    imagenet = normalization(TrainConfig(normalization="imagenet", model="unet"), tiny_train, 1)
    assert imagenet != own and len(imagenet["mean"]) == 1


def test_unlabeled_images_only_when_a_term_uses_them(tiny_train: TinyData) -> None:
    transform = evaluation_transform(mean=[0.3], std=[0.2])
    assert unlabeled_dataset(TrainConfig(), tiny_train, [5, 6, 7], None, transform, 1) is None
    semi = TrainConfig(semi_weight=0.1)
    data = unlabeled_dataset(semi, tiny_train, [5, 6, 7], [tiny_train[0].image], transform, 1)
    assert data is not None and len(data) == 4  # type: ignore[arg-type]
    image, validity = data[3]
    assert image.shape == (1, *tiny_train[0].image.shape[:2]) and not validity.any()
    with pytest.raises(PixelwiseError, match="semi_weight > 0 needs unlabeled images"):
        unlabeled_dataset(semi, tiny_train, [], None, transform, 1)
