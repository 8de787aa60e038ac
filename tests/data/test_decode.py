"""Decoding: several images in one file, a TIFF with a damaged tag, JPEG content in a mask, a MemoryError while
decoding (issue 19, items 5 and 6)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data.io import image_size, read_image, read_mask
from pixelwise.errors import InputError

PIXELS = np.arange(64, dtype=np.uint8).reshape(8, 8)


def _frames(path: Path, image_format: str) -> Path:
    frames = [Image.fromarray(np.full((8, 8), value, np.uint8)) for value in (10, 200)]
    frames[0].save(path, format=image_format, save_all=True, append_images=frames[1:])
    return path


@pytest.mark.parametrize("read", [read_image, read_mask, image_size], ids=["image", "mask", "header"])
def test_an_animated_png_is_refused_not_read_by_its_first_frame(tmp_path: Path, read: Any) -> None:
    path = _frames(tmp_path / "anim.png", "PNG")
    with pytest.raises(InputError, match=r"anim\.png: an animated PNG of 2 frames; .* save the frame you mean"):
        read(path)


def test_a_jpeg_with_a_preview_behind_it_is_read_by_its_primary_image(tmp_path: Path) -> None:
    path = _frames(tmp_path / "photo.jpg", "MPO")  # as cameras and phones write: the primary image first
    assert Image.open(path).format == "MPO"
    image = read_image(path)
    assert image.shape == (8, 8, 1) and abs(float(image.mean()) - 10 / 255) < 0.02


def test_a_mask_holding_jpeg_under_another_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(PIXELS).save(path, format="JPEG")
    with pytest.raises(InputError, match=r"mask .*mask\.png holds a JPEG image; JPEG is lossy"):
        read_mask(path)


def _damaged_tiff(tmp_path: Path, code: int) -> Path:
    """A grey TIFF whose tag ``code`` has an invalid data type (tifffile logs it and drops the tag)."""
    path = tmp_path / f"tag{code}.tif"
    tifffile.imwrite(path, PIXELS, description="scan")
    with tifffile.TiffFile(path) as tiff:
        offset = next(tag.offset for tag in tiff.pages[0].tags.values() if tag.code == code)
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, offset + 2, 0)
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_tiff_tag_is_one_note_naming_the_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = _damaged_tiff(tmp_path, 305)  # Software: the pixels do not depend on it
    with pytest.warns(UserWarning) as record:
        assert image_size(path) == (8, 8)  # the header says nothing: the note comes once, with the pixels
        image = read_image(path)
    np.testing.assert_array_equal(image[:, :, 0], PIXELS / np.float32(255))
    (note,) = [str(warning.message) for warning in record]
    assert note.startswith(f"{path}: damaged TIFF metadata ignored (tag 305 (Software): invalid data type 0)")
    # tifffile's own log line, which names no file, is not printed
    assert "TiffTag" not in capfd.readouterr().err


@pytest.mark.parametrize("code", [258, 277], ids=["BitsPerSample", "SamplesPerPixel"])
def test_a_damaged_tag_the_pixels_depend_on_refuses_the_file(tmp_path: Path, code: int) -> None:
    # without BitsPerSample tifffile falls back to 1 bit and returns booleans that are not the image
    path = _damaged_tiff(tmp_path, code)
    for read in (image_size, read_image):
        with pytest.raises(InputError, match=rf"tag{code}\.tif: TIFF tag {code} \(\w+\) is damaged .* save the image"):
            read(path)


def test_a_memory_error_while_decoding_names_the_file_and_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageFile

    path = tmp_path / "scan.png"
    Image.fromarray(PIXELS).save(path)

    def out_of_memory(self: Any) -> None:
        raise MemoryError  # as Pillow's allocator says it: no size

    monkeypatch.setattr(ImageFile.ImageFile, "load", out_of_memory)
    with pytest.raises(InputError) as caught:
        read_image(path)
    message = str(caught.value)
    # not "damaged": the file is fine, the memory is short; the size is the guard's estimate
    assert message.startswith(f"{path}: a 8 x 8 grey image of 8-bit values needs about 320 B of memory"), message
    assert "damaged" not in message


def test_a_memory_error_after_decoding_names_the_file_and_the_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelwise.data import io

    path = tmp_path / "scan.png"
    Image.fromarray(PIXELS).save(path)

    def out_of_memory(pixels: np.ndarray) -> np.ndarray:
        return np.empty((2**40, 2**20), np.float32)  # numpy's MemoryError, with the array it wanted

    monkeypatch.setattr(io, "_to_unit_range", out_of_memory)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"scan\.png: not enough memory to process it \(an array of .* float32\)"):
            read_image(path)
