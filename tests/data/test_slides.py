"""Whole-slide files through tiffslide: levels and resolution from the vendor's metadata, regions equal to the
pixels, and one line naming the extra when tiffslide is missing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelwise.data.slides import SlideSource
from pixelwise.data.sources import open_image
from pixelwise.errors import InputError, PixelwiseError

IMAGE = np.random.default_rng(0).integers(0, 256, (256, 320, 3)).astype(np.uint8)


def test_a_slide_reads_its_levels_regions_and_resolution(pyramids: Any, tmp_path: Path) -> None:
    path = pyramids.write_fake_svs(tmp_path / "slide.svs", IMAGE, mpp=0.499)
    with open_image(path) as source:
        assert isinstance(source, SlideSource)
        assert source.info.levels == ((256, 320), (64, 80))
        assert source.info.mpp == pytest.approx(0.499)
        assert source.info.dtype == "uint8" and source.info.bands == 3
        np.testing.assert_array_equal(source.read(10, 20, 100, 200), IMAGE[10:110, 20:220])
        with source.level(1) as small:
            assert small.info.mpp == pytest.approx(0.499 * 4)
            np.testing.assert_array_equal(small.read(0, 0, 64, 80), IMAGE[::4, ::4])


def test_a_level_the_slide_lacks_is_refused(pyramids: Any, tmp_path: Path) -> None:
    path = pyramids.write_fake_svs(tmp_path / "slide.svs", IMAGE)
    with pytest.raises(
        InputError, match=r"slide.svs: there is no level 2; the slide has 2 \(level 0: 320 × 256, 1: 80 × 64\)"
    ):
        SlideSource(path, level=2)


def test_without_tiffslide_a_slide_is_one_line_naming_the_extra(
    pyramids: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = pyramids.write_fake_svs(tmp_path / "slide.svs", IMAGE)
    monkeypatch.setitem(sys.modules, "tiffslide", None)  # import tiffslide raises ImportError
    with pytest.raises(
        PixelwiseError, match=r"slide.svs: .*tiffslide, which is not installed: pip install 'pixelwise\[wsi\]'$"
    ):
        open_image(path)
