"""The foreground (tissue) mask: found on a low level, tissue kept, glass skipped, and no background claimed
where there is none to skip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.data.sources import ArraySource, open_image
from pixelwise.inference import foreground
from pixelwise.inference.foreground import find_foreground


def test_tissue_on_glass_is_found_from_a_low_level(pyramids: Any, tmp_path: Path, monkeypatch: Any) -> None:
    image = pyramids.tissue_image(800, 1000, share=0.3)
    path = pyramids.write_pyramid(tmp_path / "slide.tif", image, levels=3, mpp=0.5)
    opened: list[int] = []
    original = type(open_image(path)).level

    def level(self: Any, index: int) -> Any:
        opened.append(index)
        return original(self, index)

    monkeypatch.setattr(type(open_image(path)), "level", level)
    with open_image(path) as source:
        found = find_foreground(source, side=200)
    assert opened == [2]  # the 200 × 250 level, not the full resolution
    assert found is not None
    assert 0.28 < found.fraction < 0.40  # 30 % tissue, widened by the margin
    # the tissue rectangle: rows 98..536, columns 226..773 of the full resolution
    assert found.wants(300, 450, 64, 64) and not found.wants(700, 0, 64, 64) and not found.wants(0, 900, 64, 64)
    assert found.wants(530, 770, 64, 64)  # a tile that touches the edge of the tissue runs


def test_an_image_without_white_glass_has_no_background_to_skip() -> None:
    rng = np.random.default_rng(1)
    aerial = rng.integers(60, 120, (300, 300, 3)).astype(np.uint8)  # grey roads and roofs ...
    aerial[:150, :, 1] = rng.integers(120, 200, (150, 300))  # ... and green fields
    assert find_foreground(ArraySource(aerial)) is None
    blank = find_foreground(ArraySource(np.full((100, 100, 3), 240, np.uint8)))  # an empty slide: all glass
    assert blank is not None and not blank.mask.any()


def test_grey_images_take_the_border_as_background() -> None:
    bright_field = np.full((200, 200, 1), 0.9, np.float32)
    bright_field[60:140, 60:140] = 0.3
    found = find_foreground(ArraySource(bright_field))
    assert found is not None and found.wants(90, 90, 20, 20) and not found.wants(0, 0, 20, 20)
    fluorescence = 1.0 - bright_field
    found = find_foreground(ArraySource(fluorescence))
    assert found is not None and found.wants(90, 90, 20, 20) and not found.wants(0, 0, 20, 20)
    halves = np.zeros((200, 200, 1), np.float32)
    halves[:, 100:] = 1.0  # the border is half and half: no background
    assert find_foreground(ArraySource(halves)) is None


def test_an_image_without_a_pyramid_is_thinned_band_by_band(pyramids: Any) -> None:
    image = pyramids.tissue_image(600, 500)
    picture = foreground.thumbnail(ArraySource(image), side=100)
    np.testing.assert_array_equal(picture, image[::6, ::6])


def test_otsu_in_numpy_agrees_with_scikit_image() -> None:
    from skimage.filters import threshold_otsu

    values = np.concatenate(
        [np.random.default_rng(3).normal(0.2, 0.05, 5000), np.random.default_rng(4).normal(0.7, 0.1, 3000)]
    )
    assert abs(foreground._otsu(values) - threshold_otsu(values)) < (values.max() - values.min()) / 256
