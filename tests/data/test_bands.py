"""The band rule: selections, no data, and the two scalings (per image for grey/RGB, per band by the training set)."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.data.bands import (
    BandRanges,
    InputBands,
    band_indices,
    dataset_ranges,
    image_range,
    nodata_pixels,
    parse_bands,
    to_unit_range,
    wants_dataset_ranges,
)
from pixelwise.errors import InputError, PixelwiseError


def old_per_image_rule(pixels: np.ndarray) -> np.ndarray:
    """The scaling of ``data.io`` before bands existed, verbatim: grey and RGB results must not move."""
    values = pixels.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(pixels.shape, dtype=np.float32)
    low, high = np.percentile(finite, [0.5, 99.5])
    if high <= low:
        low, high = finite.min(), finite.max()
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.float32)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    return np.nan_to_num(scaled, nan=0.0).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_per_image_rule_is_bit_for_bit_the_old_one(dtype: type, channels: int) -> None:
    rng = np.random.default_rng(channels)
    pixels = rng.normal(500, 200, (31, 17, channels)).astype(dtype)
    if dtype is np.float32:
        pixels[0, 0, 0], pixels[1, 1, 0], pixels[2, 2, 0] = np.nan, np.inf, -np.inf
    assert np.array_equal(to_unit_range(pixels), old_per_image_rule(pixels))
    constant = np.full((4, 4, channels), 7, dtype)
    assert np.array_equal(to_unit_range(constant), old_per_image_rule(constant))


def test_dataset_ranges_scale_each_band_the_same_way_in_every_image() -> None:
    ranges = BandRanges((100.0, 0.0), (1100.0, 10.0))
    a = np.array([[[100, 0], [600, 5], [2000, 20]]], np.uint16)
    scaled = to_unit_range(a, ranges=ranges)
    assert scaled.tolist() == [[[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]]
    # the same stored value is the same input in another image, however that image's own range is
    b = np.array([[[600, 5], [601, 5]]], np.uint16)
    assert to_unit_range(b, ranges=ranges)[0, 0].tolist() == [0.5, 0.5]
    assert to_unit_range(b)[0, 0, 0] != 0.5  # the per-image rule stretches it
    # uint8 stays / 255, whatever the ranges
    assert to_unit_range(np.array([[[255]]], np.uint8), ranges=BandRanges((0.0,), (1.0,))).item() == 1.0


def test_no_data_pixels_are_those_of_every_band_and_read_as_zero() -> None:
    values = np.array([[[0, 0], [0, 9], [5, 5]]], np.uint16)
    missing = nodata_pixels(values, 0)
    assert missing is not None and missing.tolist() == [[True, False, False]]
    assert nodata_pixels(values, -9999) is None  # a value uint16 cannot hold is never stored
    assert nodata_pixels(values, None) is None
    floats = np.array([[[np.nan, np.nan], [np.nan, 1.0]]], np.float32)
    assert nodata_pixels(floats, None).tolist() == [[True, False]]  # type: ignore[union-attr]
    scaled = to_unit_range(np.array([[[0], [100], [200]]], np.uint16), missing=np.array([[True, False, False]]))
    assert scaled[0, 0, 0] == 0.0
    # the no-data value is not part of the image's range
    assert image_range(np.array([[[0], [100], [200]]], np.uint16), np.array([[True, False, False]])) == (100.5, 199.5)


def test_dataset_ranges_pool_the_training_images_per_band() -> None:
    first = np.stack([np.arange(100), np.full(100, 5)], axis=1).reshape(10, 10, 2).astype(np.uint16)
    second = (first + np.array([100, 0], np.uint16)).astype(np.uint16)
    ranges = dataset_ranges([(first, None), (second, None)], images_count=2)
    assert ranges.low[0] == pytest.approx(np.percentile(np.r_[np.arange(100), np.arange(100, 200)], 0.5))
    assert (ranges.low[1], ranges.high[1]) == (5.0, 5.0)  # a constant band: its range is empty, it reads as 0
    assert to_unit_range(first, ranges=ranges)[..., 1].max() == 0.0


def test_the_rule_keeps_grey_and_rgb_per_image_and_scales_bands_by_the_dataset() -> None:
    def rule(scaling: str = "auto", **kind: object) -> bool:
        values = {"dtype": "uint16", "bands": 1, "georeferenced": False, "selected": False} | kind
        return wants_dataset_ranges(scaling, **values)  # type: ignore[arg-type]

    assert not rule() and not rule(bands=3)  # 16-bit microscopy, as before
    assert rule(bands=6) and rule(bands=2) and rule(georeferenced=True) and rule(selected=True)
    assert not rule(dtype="uint8", bands=6)  # 8-bit: / 255 always
    assert rule("dataset") and not rule("image", bands=6)
    with pytest.raises(PixelwiseError, match="choose one of auto, image, dataset"):
        rule("percentile")


def test_band_lists_and_their_refusals() -> None:
    assert parse_bands("4,3,2") == (4, 3, 2) and parse_bands(" B8 , 2") == ("B8", 2)
    for text, message in (("0", "numbered from 1"), ("4,,2", "separated by commas"), ("2,2", "band 2 given twice")):
        with pytest.raises(PixelwiseError, match=message):
            parse_bands(text)
    names = ("B2", "B3", "B4", "B8")
    assert band_indices((4, "b2"), count=4, names=names, file="s.tif") == [3, 0]
    assert band_indices((), count=3, names=(), file="s.tif") == [0, 1, 2]
    with pytest.raises(InputError, match=r"s\.tif: band 7 is beyond its 4 bands; give --bands between 1 and 4"):
        band_indices((7,), count=4, names=names, file="s.tif")
    with pytest.raises(InputError, match=r"s\.tif: no band named 'B5' \(its bands are 'B2', 'B3'"):
        band_indices(("B5",), count=4, names=names, file="s.tif")
    with pytest.raises(InputError, match="its bands have no names"):
        band_indices(("nir",), count=4, names=(), file="s.tif")


def test_input_bands_round_trip_and_write_only_what_is_set() -> None:
    assert InputBands().to_dict() == {}
    full = InputBands((4, "B3"), -9999.0, BandRanges((1.0, 2.0), (9.0, 8.0)))
    assert InputBands.from_dict(full.to_dict()) == full
