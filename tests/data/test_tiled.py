"""Tiled and pyramidal TIFFs read by region: the same pixels as a whole read, only the touched tiles decoded,
the levels of a pyramid, values scaled without the whole image, and one line for a damaged tile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from pixelwise.data import tiled
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.sources import ArraySource, open_image
from pixelwise.data.tiled import TiledTiffSource
from pixelwise.errors import InputError

IMAGE = np.random.default_rng(0).integers(0, 256, (300, 410, 3)).astype(np.uint8)


def test_a_tiled_tiff_opens_lazily_and_reads_the_pixels_of_the_whole_image(tmp_path: Path) -> None:
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, IMAGE, tile=(64, 64), photometric="rgb", compression="zlib")
    with open_image(path) as source:
        assert isinstance(source, TiledTiffSource)
        assert (source.info.height, source.info.width, source.info.bands, source.info.dtype) == (300, 410, 3, "uint8")
        np.testing.assert_array_equal(source.read(0, 0, 300, 410), IMAGE)
        np.testing.assert_array_equal(source.read(37, 101, 90, 200), IMAGE[37:127, 101:301])
        # a region at the edge is clipped to the image
        assert source.read(290, 400, 64, 64).shape == (10, 10, 3)


def test_a_plain_small_tiff_keeps_the_whole_read_and_a_stack_is_not_taken(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "plain.tif", IMAGE, photometric="rgb")
    assert isinstance(open_image(tmp_path / "plain.tif"), ArraySource)
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 128, 128), np.uint8), tile=(64, 64), photometric="minisblack")
    assert not tiled.accepts(tmp_path / "stack.tif")
    with pytest.raises(InputError, match="5 pages"):
        open_image(tmp_path / "stack.tif")


def test_only_the_tiles_a_region_touches_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, IMAGE, tile=(64, 64), photometric="rgb")
    reads: list[int] = []
    original = tifffile.FileHandle.read_segments

    def counting(self: Any, offsets: list[int], *args: Any, **kwargs: Any) -> Any:
        reads.extend(offsets)
        return original(self, offsets, *args, **kwargs)

    monkeypatch.setattr(tifffile.FileHandle, "read_segments", counting)
    with TiledTiffSource(path) as source:
        source.read(70, 70, 50, 50)  # inside tile (1, 1)
        assert len(reads) == 1
        source.read(70, 70, 50, 50)  # the same tile row again: from the cache
        assert len(reads) == 1


@pytest.mark.parametrize("layout", ["planar", "strips", "ome-channels", "subifds"])
def test_every_layout_reads_the_same_pixels(
    pyramids: Any, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"{layout}.tif"
    if layout == "planar":
        tifffile.imwrite(path, IMAGE.transpose(2, 0, 1), tile=(64, 64), photometric="rgb", planarconfig="separate")
    elif layout == "strips":
        monkeypatch.setattr(tiled, "LAZY_PIXELS", 1000)  # a striped TIFF over the size goes lazy too
        tifffile.imwrite(path, IMAGE, rowsperstrip=16, photometric="rgb", compression="zlib")
    elif layout == "ome-channels":
        tifffile.imwrite(
            path.with_suffix(".ome.tif"),
            IMAGE.transpose(2, 0, 1),
            tile=(64, 64),
            photometric="minisblack",
            metadata={"axes": "CYX"},
        )
        path = path.with_suffix(".ome.tif")
    else:
        pyramids.write_pyramid(path, IMAGE, subifds=True)
    assert tiled.accepts(path)
    with open_image(path) as source:
        np.testing.assert_array_equal(source.read(0, 0, 300, 410), IMAGE)
        np.testing.assert_array_equal(source.read(100, 33, 77, 300), IMAGE[100:177, 33:333])


def test_a_pyramid_has_its_levels_with_their_resolution(pyramids: Any, tmp_path: Path) -> None:
    path = pyramids.write_pyramid(tmp_path / "pyramid.tif", IMAGE, levels=3, mpp=0.25)
    with open_image(path) as source:
        info = source.info
        assert info.levels == ((300, 410), (150, 205), (75, 103))
        assert info.mpp == pytest.approx(0.25)
        with source.level(2) as small:
            assert (small.info.height, small.info.width) == (75, 103)
            assert small.info.mpp == pytest.approx(0.25 * 410 / 103)
            np.testing.assert_array_equal(small.read(0, 0, 75, 103), IMAGE[::4, ::4])
    # the data layer reads a pyramid whole as its full resolution, not as a stack
    np.testing.assert_array_equal(read_image(path), IMAGE.astype(np.float32) / np.float32(255))


def test_a_small_16_bit_image_gets_exactly_the_values_of_the_whole_read(tmp_path: Path) -> None:
    values = (np.random.default_rng(1).gamma(2.0, 300.0, (200, 230)) + 40).astype(np.uint16)
    values[5, 5] = 65535  # a hot pixel the percentiles ignore
    tifffile.imwrite(tmp_path / "u16.tif", values, tile=(64, 64))
    with open_image(tmp_path / "u16.tif") as source:
        assert source.info.dtype == "float32"
        np.testing.assert_array_equal(source.read(0, 0, 200, 230), read_image(tmp_path / "u16.tif"))


@pytest.mark.parametrize("pyramid", [True, False])
def test_a_large_16_bit_image_is_scaled_from_a_small_level_or_spread_windows(
    pyramids: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pyramid: bool
) -> None:
    monkeypatch.setattr(tiled, "EXACT_RANGE_PIXELS", 10_000)
    monkeypatch.setattr(tiled, "SAMPLE_PIXELS", 2_000)
    values = (np.random.default_rng(2).random((256, 320)) * 1000 + 500).astype(np.uint16)
    path = tmp_path / "u16.tif"
    if pyramid:
        pyramids.write_pyramid(path, values, levels=3)
    else:
        tifffile.imwrite(path, values, tile=(32, 32))
    with open_image(path) as source:
        read = source.read(0, 0, 256, 320)
    exact = read_image(tmp_path / "u16.tif") if not pyramid else None
    assert read.dtype == np.float32 and read.min() >= 0.0 and read.max() <= 1.0
    # the estimated range is close to the range of all pixels: the values differ by a few hundredths at most
    reference = exact if exact is not None else (np.clip((values - 505.0) / (1495.0 - 505.0), 0, 1)[:, :, None])
    assert np.abs(read - reference).max() < 0.03


def test_a_damaged_tile_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "damaged.tif"
    tifffile.imwrite(path, IMAGE, tile=(64, 64), photometric="rgb", compression="zlib")
    with tifffile.TiffFile(path) as tiff:
        offset = tiff.pages[0].dataoffsets[7]  # tile row 1
    data = bytearray(path.read_bytes())
    data[offset : offset + 40] = b"\x00" * 40
    path.write_bytes(bytes(data))
    with open_image(path) as source:
        source.read(0, 0, 64, 410)  # tile row 0 is fine
        with pytest.raises(InputError) as raised:
            source.read(64, 0, 64, 410)
    message = str(raised.value)
    assert str(path) in message and "row 1" in message and "damaged" in message and "\n" not in message


def test_a_level_that_does_not_exist_is_refused_naming_the_levels(pyramids: Any, tmp_path: Path) -> None:
    path = pyramids.write_pyramid(tmp_path / "pyramid.tif", IMAGE, levels=2)
    with pytest.raises(InputError, match=r"no level 5; the image has 2 \(level 0: 410 × 300, 1: 205 × 150\)"):
        TiledTiffSource(path, level=5)


def test_read_mask_reads_a_pyramidal_palette_mask(pyramids: Any, tmp_path: Path) -> None:
    labels = np.random.default_rng(3).integers(0, 3, (200, 260)).astype(np.uint8)
    path = pyramids.write_pyramid(tmp_path / "mask.tif", labels, levels=2)
    np.testing.assert_array_equal(read_mask(path), labels)


def test_an_uploaded_pyramid_is_read_as_its_full_resolution(pyramids: Any, tmp_path: Path) -> None:
    """What ``pixelwise serve`` decodes: the bytes of a pyramidal TIFF give its level 0, not a refusal."""
    from pixelwise.data.io import decode_image

    path = pyramids.write_pyramid(tmp_path / "upload.tif", IMAGE, levels=3)
    np.testing.assert_array_equal(
        decode_image(path.read_bytes(), "upload.tif"), IMAGE.astype(np.float32) / np.float32(255)
    )
