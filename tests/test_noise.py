"""Noise models: exact values on tiny arrays, seeding, clipping."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.noise import NoiseLevel, apply_noise, gaussian_noise, noise_sweep, salt_and_pepper


def test_gaussian_noise_adds_the_seeded_draw_and_clips() -> None:
    image = np.array([[0.0, 0.5], [0.9, 1.0]], dtype=np.float32)
    expected_noise = np.random.default_rng(7).normal(0.0, 0.2, size=(2, 2)).astype(np.float32)
    noisy = gaussian_noise(image, 0.2, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(noisy, np.clip(image + expected_noise, 0, 1))
    assert noisy.dtype == np.float32
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_gaussian_noise_clips_both_ends_exactly() -> None:
    # sigma 2 pushes most values out of range: exactly those become 0 or 1, the rest keep their sum
    raw = 0.5 + np.random.default_rng(0).normal(0.0, 2.0, size=(8, 8)).astype(np.float32)
    noisy = gaussian_noise(np.full((8, 8), 0.5), 2.0, rng=np.random.default_rng(0))
    assert np.count_nonzero(noisy == 0) == np.count_nonzero(raw <= 0) > 0
    assert np.count_nonzero(noisy == 1) == np.count_nonzero(raw >= 1) > 0
    inside = (raw > 0) & (raw < 1)
    np.testing.assert_array_equal(noisy[inside], raw[inside])


def test_zero_noise_is_the_identity_and_a_copy() -> None:
    image = np.random.default_rng(1).random((3, 4, 3)).astype(np.float32)
    for noisy in (
        gaussian_noise(image, 0.0, rng=np.random.default_rng(0)),
        salt_and_pepper(image, 0.0, rng=np.random.default_rng(0)),
    ):
        np.testing.assert_array_equal(noisy, image)
        assert noisy is not image


def test_salt_and_pepper_replaces_an_exact_count_half_black_half_white() -> None:
    image = np.full((4, 5), 0.5, dtype=np.float32)
    noisy = salt_and_pepper(image, 0.25, rng=np.random.default_rng(3))  # round(0.25 * 20) = 5 pixels
    assert np.count_nonzero(noisy == 0.0) == 2  # 5 // 2 pepper
    assert np.count_nonzero(noisy == 1.0) == 3  # the rest salt
    assert np.count_nonzero(noisy == 0.5) == 15


def test_salt_and_pepper_hits_all_channels_of_a_pixel() -> None:
    image = np.full((3, 3, 3), 0.5, dtype=np.float32)
    noisy = salt_and_pepper(image, 1.0, rng=np.random.default_rng(0))
    # every pixel replaced, and each pixel is black or white in all three channels
    assert set(np.unique(noisy).tolist()) == {0.0, 1.0}
    assert (noisy.min(axis=2) == noisy.max(axis=2)).all()
    assert np.count_nonzero(noisy[..., 0] == 0) == 4 and np.count_nonzero(noisy[..., 0] == 1) == 5


def test_apply_noise_is_the_same_for_the_same_key_and_differs_between_images() -> None:
    image = np.full((6, 6), 0.5, dtype=np.float32)
    level = NoiseLevel("gaussian", 0.1)
    first = apply_noise(image, level, seed=0, index=3)
    np.testing.assert_array_equal(first, apply_noise(image, level, seed=0, index=3))
    assert not np.array_equal(first, apply_noise(image, level, seed=0, index=4))
    assert not np.array_equal(first, apply_noise(image, level, seed=1, index=3))
    # the draw does not depend on what was drawn before (another level, another image)
    apply_noise(image, NoiseLevel("salt_pepper", 0.5), seed=0, index=3)
    np.testing.assert_array_equal(first, apply_noise(image, level, seed=0, index=3))


def test_levels_name_themselves_and_refuse_bad_amounts() -> None:
    assert NoiseLevel("gaussian", 0.0).key == "clean"
    assert NoiseLevel("salt_pepper", 0.05).key == "salt_pepper-0.05"
    assert NoiseLevel("salt_pepper", 0.05).name == "salt&pepper p=0.05"
    with pytest.raises(PixelwiseError, match="out of range"):
        NoiseLevel("salt_pepper", 1.5)
    with pytest.raises(PixelwiseError, match="unknown noise kind"):
        NoiseLevel("speckle", 0.1)  # type: ignore[arg-type]


def test_sweep_starts_clean_once_and_drops_repeats() -> None:
    levels = noise_sweep(sigmas=(0.0, 0.1, 0.1), salt_pepper=(0.0, 0.2))
    assert [level.key for level in levels] == ["clean", "gaussian-0.1", "salt_pepper-0.2"]
