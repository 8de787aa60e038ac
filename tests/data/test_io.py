"""read_image / read_mask / write_mask / list_images on tiny files written in every supported encoding."""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data import io, masks
from pixelwise.data.classes import ClassSpec
from pixelwise.data.decode import ImageTooLargeError
from pixelwise.data.io import image_size, list_images, read_image, read_mask, write_mask
from pixelwise.errors import PixelwiseError

GREY = np.array([[0, 51, 102], [153, 204, 255]], dtype=np.uint8)
RGB = np.stack([GREY, GREY[::-1], 255 - GREY], axis=-1)
THREE = ClassSpec(("background", "cell", "edge"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))


@pytest.fixture(autouse=True)
def _fresh_binary_notice() -> None:
    # the 0/255 notice is given once per folder per process; each test starts from a clean slate
    masks._read_255.clear()
    masks._declared_noticed.clear()


# --- images --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_uint8_grey_divides_by_255(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"grey{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, GREY)
    else:
        Image.fromarray(GREY).save(path)
    image = read_image(path)
    assert image.dtype == np.float32 and image.shape == (2, 3, 1)
    np.testing.assert_allclose(image[:, :, 0], GREY / 255, atol=1e-7)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_uint8_rgb_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rgb{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, RGB)
    else:
        Image.fromarray(RGB).save(path)
    np.testing.assert_allclose(read_image(path), RGB / 255, atol=1e-7)


def test_planar_tiff_moves_channels_last(tmp_path: Path) -> None:
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(RGB, -1, 0), planarconfig="separate", photometric="rgb")
    np.testing.assert_allclose(read_image(path), RGB / 255, atol=1e-7)


def test_jpeg_is_read_close_to_the_original(tmp_path: Path) -> None:
    smooth = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (16, 1))
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.stack([smooth] * 3, -1)).save(path, quality=95)
    image = read_image(path)
    assert image.shape == (16, 16, 3)
    assert np.abs(image[:, :, 0] - smooth / 255).max() < 0.05


def test_rgba_drops_alpha_and_la_drops_alpha(tmp_path: Path) -> None:
    alpha = np.full(GREY.shape, 7, dtype=np.uint8)
    Image.fromarray(np.dstack([RGB, alpha]), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([GREY, alpha]), mode="LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image(tmp_path / "rgba.png"), RGB / 255, atol=1e-7)
    np.testing.assert_allclose(read_image(tmp_path / "la.png")[:, :, 0], GREY / 255, atol=1e-7)
    assert read_image(tmp_path / "la.png").shape == (2, 3, 1)


def test_palette_image_becomes_its_colours(tmp_path: Path) -> None:
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([10, 20, 30, 200, 100, 0, 255, 255, 255])
    image.save(tmp_path / "palette.png")
    colours = np.array([[10, 20, 30], [200, 100, 0], [255, 255, 255]])
    np.testing.assert_allclose(read_image(tmp_path / "palette.png"), colours[indices] / 255, atol=1e-7)


def test_uint16_uses_the_robust_range(tmp_path: Path) -> None:
    # 1000 pixels from 100 to 1099: the 0.5/99.5 percentiles are 104.995 and 1094.005
    values = (np.arange(1000, dtype=np.uint16) + 100).reshape(20, 50)
    for name in ("u16.tif", "u16.png"):
        if name.endswith(".tif"):
            tifffile.imwrite(tmp_path / name, values)
        else:
            Image.fromarray(values).save(tmp_path / name)
        image = read_image(tmp_path / name)[:, :, 0]
        low, high = np.percentile(values.astype(np.float64), [0.5, 99.5])
        expected = np.clip((values - low) / (high - low), 0, 1)
        np.testing.assert_allclose(image, expected, atol=1e-6)
        assert image.min() == 0 and image.max() == 1


def test_one_hot_pixel_does_not_squash_a_16_bit_image(tmp_path: Path) -> None:
    values = np.tile(np.arange(0, 200, dtype=np.uint16), (5, 1))
    values[0, 0] = 60000  # a saturated pixel: with min/max the rest would land in [0, 0.003]
    tifffile.imwrite(tmp_path / "hot.tif", values)
    image = read_image(tmp_path / "hot.tif")
    assert image[2, 100, 0] == pytest.approx(0.5, abs=0.02)


def test_signed_hounsfield_units(tmp_path: Path) -> None:
    # air -1000, water 0, bone +1000, equal thirds: the robust range is -1000..1000
    hu = np.repeat(np.array([-1000, 0, 1000], dtype=np.int16), 100).reshape(30, 10)
    tifffile.imwrite(tmp_path / "ct.tif", hu)
    image = read_image(tmp_path / "ct.tif")[:, :, 0]
    np.testing.assert_allclose(np.unique(image), [0.0, 0.5, 1.0], atol=1e-6)
    assert np.all(image[hu == 0] == 0.5)


def test_float32_tiff_with_non_finite_values(tmp_path: Path) -> None:
    values = np.linspace(-3.0, 5.0, 400, dtype=np.float32).reshape(20, 20)
    values[0, 0], values[0, 1], values[0, 2] = np.nan, np.inf, -np.inf
    tifffile.imwrite(tmp_path / "float.tif", values)
    image = read_image(tmp_path / "float.tif")[:, :, 0]
    assert image.dtype == np.float32 and np.isfinite(image).all()
    assert (image[0, 0], image[0, 1], image[0, 2]) == (0.0, 1.0, 0.0)
    assert image.min() == 0 and image.max() == 1
    assert np.all(np.diff(image.ravel()[3:]) >= 0)  # the ramp stays a ramp


def test_constant_and_almost_constant_images(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "flat.tif", np.full((4, 4), 1234, dtype=np.uint16))
    np.testing.assert_array_equal(read_image(tmp_path / "flat.tif"), np.zeros((4, 4, 1)))
    # one bright pixel in 10,000: the percentiles meet, so min/max are used and the pixel stays visible
    sparse = np.zeros((100, 100), dtype=np.uint16)
    sparse[5, 5] = 700
    tifffile.imwrite(tmp_path / "sparse.tif", sparse)
    image = read_image(tmp_path / "sparse.tif")
    assert image[5, 5, 0] == 1 and image.sum() == 1


def test_one_bit_image(tmp_path: Path) -> None:
    bits = np.array([[True, False], [False, True]])
    Image.fromarray(bits).save(tmp_path / "bits.png")
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png")[:, :, 0], bits.astype(np.float32))


def test_image_size_reads_headers(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((3, 9, 3), np.uint8))
    assert image_size(tmp_path / "a.png") == (5, 7)
    assert image_size(tmp_path / "b.tif") == (3, 9)


# --- bad image files -----------------------------------------------------------------------------------


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(PixelwiseError, match=r"broken\.png: cannot read the image"):
        read_image(path)


def test_truncated_tiff_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(PixelwiseError, match=r"broken\.tif"):
        read_image(path)


def test_text_file_with_image_suffix(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(PixelwiseError, match=r"notes\.png: cannot read the image"):
        read_image(path)


def test_missing_and_non_image_files(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match=r"nothing\.png: no such file"):
        read_image(tmp_path / "nothing.png")
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(PixelwiseError, match=r"data\.csv: not an image file"):
        read_image(tmp_path / "data.csv")


def test_volume_tiff_is_refused(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 8, 8), np.uint8))
    with pytest.raises(PixelwiseError, match=r"stack\.tif: a TIFF of 5 pages"):
        read_image(tmp_path / "stack.tif")
    with pytest.raises(PixelwiseError, match=r"stack\.tif: a TIFF of 5 pages"):
        image_size(tmp_path / "stack.tif")  # a folder's check() refuses it before any work
    tifffile.imwrite(tmp_path / "volume.tif", np.zeros((5, 6, 8, 8), np.uint8), imagej=True)  # one series, ZYX
    with pytest.raises(PixelwiseError, match=r"volume\.tif: a TIFF of 30 pages"):
        read_image(tmp_path / "volume.tif")


def test_alpha_samples_are_dropped_and_other_extra_channels_kept_as_bands(tmp_path: Path) -> None:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    tifffile.imwrite(
        tmp_path / "la.tif", np.dstack([grey, grey]), photometric="minisblack", extrasamples=["unassalpha"]
    )
    np.testing.assert_array_equal(read_image(tmp_path / "la.tif")[:, :, 0], grey / np.float32(255))
    rgba = np.dstack([grey, grey, grey, grey])
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    assert read_image(tmp_path / "rgba.tif").shape == (8, 8, 3)
    # two channels that are not grey + alpha are two bands (two fluorescence stains), no longer refused
    tifffile.imwrite(
        tmp_path / "two.tif", np.dstack([grey, 255 - grey]), photometric="minisblack", planarconfig="contig"
    )
    two = read_image(tmp_path / "two.tif")
    assert two.shape == (8, 8, 2)
    np.testing.assert_array_equal(two[:, :, 1], (255 - grey) / np.float32(255))
    with pytest.raises(PixelwiseError, match=r"mask .*two\.tif has 2 channels"):
        read_mask(tmp_path / "two.tif")


def test_the_memory_guard_says_what_an_image_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pixelwise.data.memory as memory

    Image.fromarray(np.zeros((300, 200), np.uint8)).save(tmp_path / "scan.png")
    # 300 x 200 x (1 + 4) bytes do not fit
    monkeypatch.setattr(memory, "memory_room", lambda: memory.Room(100_000, "{} are available", "free memory"))
    with pytest.raises(
        PixelwiseError,
        match=r"scan\.png: a 200 x 300 grey image of 8-bit values needs about 293\.0 KB .* 97\.7 KB are available",
    ):
        read_image(tmp_path / "scan.png")
    monkeypatch.setattr(memory, "memory_room", lambda: None)  # a system that does not say: no guard
    assert read_image(tmp_path / "scan.png").shape == (300, 200, 1)


# --- images from bytes ---------------------------------------------------------------------------------


def _write_every_encoding(folder: Path) -> list[Path]:
    """One small file per encoding read_image understands."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])).save(folder / "rgba.png")
    Image.fromarray(rgb[:, :, 0]).save(folder / "grey.bmp")
    Image.fromarray(rgb).save(folder / "photo.jpg", quality=90)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(folder / "palette.png")
    tifffile.imwrite(folder / "u16.tif", rng.integers(800, 3000, (9, 11), dtype=np.uint16))
    tifffile.imwrite(folder / "planar.tif", rng.integers(0, 256, (3, 9, 11), dtype=np.uint8), photometric="rgb")
    tifffile.imwrite(folder / "float.tif", rng.normal(0, 1, (9, 11)).astype(np.float32))
    return sorted(folder.iterdir())


def test_decode_image_reads_bytes_exactly_as_read_image_reads_the_file(tmp_path: Path) -> None:
    for path in _write_every_encoding(tmp_path):
        decoded = io.decode_image(path.read_bytes(), path.name)
        assert decoded.dtype == np.float32
        np.testing.assert_array_equal(decoded, read_image(path), err_msg=path.name)


def test_tiff_is_recognised_by_content_not_by_name(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "scan.png", np.random.default_rng(4).integers(0, 4000, (6, 7), dtype=np.uint16))
    image = read_image(tmp_path / "scan.png")  # a 16-bit TIFF with a misleading name: Pillow would say 8 bits
    assert image.shape == (6, 7, 1) and image.min() == 0 and image.max() == 1
    np.testing.assert_array_equal(io.decode_image((tmp_path / "scan.png").read_bytes()), image)


def test_decode_image_problems_name_the_upload() -> None:
    with pytest.raises(PixelwiseError, match=r"^a\.png: the file is empty \(0 bytes\)"):
        io.decode_image(b"", "a.png")
    with pytest.raises(PixelwiseError, match=r"^a\.png: cannot read the image \(not a PNG, JPEG, BMP or TIFF image\)"):
        io.decode_image(b"%!PS-Adobe-3.0 EPSF-3.0\n", "a.png")  # Pillow could hand EPS to Ghostscript: never


def test_the_pixel_cap_is_checked_before_decoding(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    assert io.decode_image(data, max_pixels=1200).shape == (30, 40, 1)
    with pytest.raises(
        ImageTooLargeError, match=r"^a\.png: 40 × 30 pixels \(0\.0 megapixels\) is over the limit of 1,199 pixels"
    ):
        io.decode_image(data, "a.png", max_pixels=1199)
    # a TIFF cut after its header: decoding would fail, so refusing it proves the pixels were never read
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((500, 600), np.uint8))
    header = (tmp_path / "big.tif").read_bytes()[:1000]
    with pytest.raises(ImageTooLargeError, match=r"^big\.tif: 600 × 500 pixels"):
        io.decode_image(header, "big.tif", max_pixels=1000)
    with pytest.raises(PixelwiseError, match="cannot read the image"):
        io.decode_image(header, "big.tif")


def test_encode_mask_is_what_write_mask_writes(tmp_path: Path) -> None:
    write_mask(tmp_path / "m.png", LABELS, THREE)
    assert io.encode_mask(LABELS, THREE) == (tmp_path / "m.png").read_bytes()
    with pytest.raises(PixelwiseError, match=r"^mask labels has values \{7\}"):
        io.encode_mask(np.array([[7]]), THREE)


def test_overlay_blends_the_class_colours_over_the_image() -> None:
    image = np.zeros((1, 2, 1), np.float32)
    image[0, 1] = 1.0
    labels = np.array([[1, 2]])
    blended = io.overlay(image, labels, THREE)
    opacity = io.OVERLAY_OPACITY
    expected = np.rint([[[255 * opacity, 0, 0], [255 * (1 - opacity), 255 * (1 - opacity), 255]]]).astype(np.uint8)
    np.testing.assert_array_equal(blended, expected)
    with Image.open(BytesIO(io.encode_overlay(image, labels, THREE))) as picture:
        np.testing.assert_array_equal(np.asarray(picture), blended)


# --- masks ---------------------------------------------------------------------------------------------

LABELS = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)


@pytest.mark.parametrize("writer", ["png", "tif8", "tif16", "tif32f"])
def test_index_masks(tmp_path: Path, writer: str) -> None:
    if writer == "png":
        path = tmp_path / "m.png"
        Image.fromarray(LABELS).save(path)
    else:
        path = tmp_path / "m.tif"
        dtype = {"tif8": np.uint8, "tif16": np.uint16, "tif32f": np.float32}[writer]
        tifffile.imwrite(path, LABELS.astype(dtype))
    mask = read_mask(path, THREE)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, LABELS)


def test_palette_mask_uses_indices_not_colours(tmp_path: Path) -> None:
    # the palette colours are arbitrary (not THREE's); only the indices count
    image = Image.fromarray(LABELS, mode="P")
    image.putpalette([9, 9, 9, 1, 2, 3, 200, 0, 0])
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png", THREE), LABELS)


def test_a_palette_in_another_class_order_is_refused(tmp_path: Path) -> None:
    # index 1 painted in the colour THREE gives class 2: the mask was saved in another class order
    image = Image.fromarray(LABELS, mode="P")
    image.putpalette([*THREE.colors[0], *THREE.colors[2], *THREE.colors[1]])
    image.save(tmp_path / "swapped.png")
    with pytest.raises(
        PixelwiseError, match=r"swapped\.png: its palette gives index 1 \(cell\) the colour .* edge would"
    ):
        read_mask(tmp_path / "swapped.png", THREE)
    assert read_mask(tmp_path / "swapped.png").max() == 2  # without classes there is nothing to contradict


def test_palette_mask_keeps_255_as_ignore(tmp_path: Path) -> None:
    voc = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    image = Image.fromarray(voc, mode="P")
    image.putpalette(ClassSpec.default(2).palette().ravel().tolist())
    image.save(tmp_path / "voc.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_mask(tmp_path / "voc.png", ClassSpec.default(2)), voc)


def test_rgb_colour_mask_maps_through_the_classes(tmp_path: Path) -> None:
    colours = np.array(THREE.colors, dtype=np.uint8)[LABELS]
    colours[0, 0] = 255  # the ignore colour (white)
    Image.fromarray(colours).save(tmp_path / "c.png")
    expected = LABELS.copy()
    expected[0, 0] = 255
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png", THREE), expected)
    # the same with an alpha channel
    Image.fromarray(np.dstack([colours, np.full(LABELS.shape, 255, np.uint8)])).save(tmp_path / "ca.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "ca.png", THREE), expected)


def test_unknown_colours_are_listed(tmp_path: Path) -> None:
    colours = np.array(THREE.colors, dtype=np.uint8)[LABELS]
    colours[0, 0] = (1, 2, 3)
    colours[1, 2] = (7, 8, 9)
    Image.fromarray(colours).save(tmp_path / "odd.png")
    with pytest.raises(PixelwiseError, match=r"odd\.png has 2 colour\(s\).*\(1, 2, 3\), \(7, 8, 9\); add them"):
        read_mask(tmp_path / "odd.png", THREE)


def test_many_unknown_colours_show_five(tmp_path: Path) -> None:
    colours = np.zeros((1, 8, 3), np.uint8)
    colours[0, :, 1] = np.arange(1, 9)
    Image.fromarray(colours).save(tmp_path / "many.png")
    with pytest.raises(PixelwiseError, match=r"has 8 colour\(s\).*\(0, 5, 0\) and 3 more"):
        read_mask(tmp_path / "many.png", THREE)


def test_colour_mask_without_classes(tmp_path: Path) -> None:
    Image.fromarray(np.array(THREE.colors, dtype=np.uint8)[LABELS]).save(tmp_path / "c.png")
    with pytest.raises(PixelwiseError, match=r"c\.png is an RGB colour mask.*classes\.yaml"):
        read_mask(tmp_path / "c.png")


def test_grey_mask_saved_as_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.dstack([LABELS] * 3)).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png", THREE), LABELS)


def test_binary_0_255_becomes_0_1_with_one_notice(tmp_path: Path) -> None:
    binary = np.array([[0, 255], [255, 255]], dtype=np.uint8)
    Image.fromarray(binary).save(tmp_path / "a.png")
    Image.fromarray(binary[::-1]).save(tmp_path / "b.png")
    with pytest.warns(UserWarning, match=r"a\.png .* 0/255") as record:
        first = read_mask(tmp_path / "a.png", ClassSpec.default(2))
        second = read_mask(tmp_path / "b.png")
    assert len(record) == 1  # one notice for the folder, not one per file
    np.testing.assert_array_equal(first, binary // 255)
    np.testing.assert_array_equal(second, binary[::-1] // 255)


def test_0_255_with_more_classes_is_background_and_ignore(tmp_path: Path) -> None:
    mask = np.array([[0, 255]], dtype=np.uint8)
    Image.fromarray(mask).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", THREE), mask)


def test_values_outside_the_classes(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    bad = LABELS.copy()
    bad[0, 0], bad[1, 1] = 3, 17
    Image.fromarray(bad).save(masks / "img_007.png")
    with pytest.raises(PixelwiseError, match=r"masks/img_007\.png has values \{3, 17\} but .* 0\.\.2"):
        read_mask(masks / "img_007.png", THREE)


def test_bad_masks(tmp_path: Path) -> None:
    Image.fromarray(LABELS).save(tmp_path / "m.jpg")
    with pytest.raises(PixelwiseError, match=r"m\.jpg is a JPEG"):
        read_mask(tmp_path / "m.jpg", THREE)
    tifffile.imwrite(tmp_path / "frac.tif", np.array([[0.5, 1.0]], np.float32))
    with pytest.raises(PixelwiseError, match=r"frac\.tif has fractional values"):
        read_mask(tmp_path / "frac.tif")
    tifffile.imwrite(tmp_path / "big.tif", np.array([[0, 300, 1000]], np.uint16))
    with pytest.raises(PixelwiseError, match=r"big\.tif has values \{300, 1000\} outside 0\.\.255"):
        read_mask(tmp_path / "big.tif")
    (tmp_path / "t.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(PixelwiseError, match=r"t\.png: cannot read"):
        read_mask(tmp_path / "t.png")


def test_write_mask_round_trips_as_palette_png(tmp_path: Path) -> None:
    labels = LABELS.copy()
    labels[0, 0] = 255
    write_mask(tmp_path / "out" / "m.png", labels, THREE)
    with Image.open(tmp_path / "out" / "m.png") as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()[:9]).reshape(3, 3)
    np.testing.assert_array_equal(palette, np.array(THREE.colors))
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / "m.png", THREE), labels)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["m.png"]  # no temporary left


def test_write_mask_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match=r"m\.jpg: masks are written as PNG"):
        write_mask(tmp_path / "m.jpg", LABELS, THREE)
    with pytest.raises(PixelwiseError, match=r"has values \{5\}"):
        write_mask(tmp_path / "m.png", np.array([[5]]), THREE)
    with pytest.raises(PixelwiseError, match=r"must be \(H, W\)"):
        write_mask(tmp_path / "m.png", np.zeros((2, 2, 3), int), THREE)
    assert not (tmp_path / "m.png").exists()


# --- folders -------------------------------------------------------------------------------------------


def test_list_images_sorted_skipping_hidden_files(tmp_path: Path) -> None:
    for name in ("b.png", "a.tif", "c.JPG"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"")
    (tmp_path / "Thumbs.db").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    assert [path.name for path in list_images(tmp_path)] == ["a.tif", "b.png", "c.JPG"]


def test_list_images_names_non_images(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PixelwiseError, match=r"not images \(notes\.txt\); move them out"):
        list_images(tmp_path)
    with pytest.raises(PixelwiseError, match=r"missing: no such folder"):
        list_images(tmp_path / "missing")


# --- paths that are no files (issue 19) -----------------------------------------------------------------


@pytest.fixture
def no_blocking() -> Iterator[None]:
    """Fail instead of hanging: opening a named pipe for reading waits for a writer forever."""

    def hung(*_: object) -> None:
        raise AssertionError("a named pipe was opened")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("read", [read_image, read_mask, image_size], ids=["image", "mask", "header"])
def test_a_pipe_or_a_device_is_said_as_what_it_is_and_never_read(tmp_path: Path, read: Any, no_blocking: None) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "gone.png").symlink_to(tmp_path / "moved.png")
    with pytest.raises(PixelwiseError, match=r"pipe\.png: a named pipe \(FIFO\), not an image file"):
        read(tmp_path / "pipe.png")
    with pytest.raises(PixelwiseError, match=r"zero\.png: a link to /dev/zero, a character device, not an image"):
        read(tmp_path / "zero.png")
    with pytest.raises(PixelwiseError, match=r"gone\.png: a link to .*moved\.png, which does not exist; fix the link"):
        read(tmp_path / "gone.png")
    with pytest.raises(PixelwiseError, match=r"nothing\.png: no such file; check the path"):
        read(tmp_path / "nothing.png")
