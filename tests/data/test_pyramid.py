"""Which pyramid level is read: by number, by resolution, by the model's resolution; what is refused."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelwise.data.pyramid import at_level, level_mpps
from pixelwise.data.sources import ArraySource, open_image
from pixelwise.errors import InputError, PixelwiseError

IMAGE = np.random.default_rng(0).integers(0, 256, (256, 256, 3)).astype(np.uint8)


@pytest.fixture
def pyramid(pyramids: Any, tmp_path: Path) -> Path:
    return pyramids.write_pyramid(tmp_path / "p.tif", IMAGE, levels=3, mpp=0.25)


def test_a_level_by_number_and_by_resolution(pyramid: Path) -> None:
    assert level_mpps(open_image(pyramid)) == pytest.approx([0.25, 0.5, 1.0])
    assert at_level(open_image(pyramid), level=2).info.height == 64
    assert at_level(open_image(pyramid), mpp=0.55).info.height == 128
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the model was trained at 1 µm/px: level 2 is read, and said
        assert at_level(open_image(pyramid), model_mpp=1.0).info.height == 64
        # a resolution no level has: the nearest, said
        assert at_level(open_image(pyramid), mpp=3.0).info.height == 64
    notes = [str(warning.message) for warning in caught]
    assert any("trained at 1 µm/px: predicting on level 2" in note for note in notes)
    assert any("no level is at 3 µm/px; predicting on level 2 at 1 µm/px" in note for note in notes)
    # the full resolution when nothing asks for another
    assert at_level(open_image(pyramid)).info.height == 256


def test_refusals(pyramid: Path) -> None:
    with pytest.raises(InputError, match=r"p.tif: there is no level 3; the image has 3 .* give --level 0 to 2"):
        at_level(open_image(pyramid), level=3)
    plain = ArraySource(IMAGE, name="photo.png")
    assert at_level(plain, level=0) is plain
    with pytest.raises(InputError, match=r"photo.png: there is no level 1; the image has 1"):
        at_level(plain, level=1)
    with pytest.raises(InputError, match=r"photo.png: the file does not say its resolution .* give --level N instead"):
        at_level(plain, mpp=0.5)
    with pytest.raises(PixelwiseError, match="--level and --mpp exclude each other"):
        at_level(plain, level=0, mpp=0.5)
