"""What a mask's values mean: a declared ignore label wins over the 0/255 guess, one reading of 255 per folder,
1-bit masks, grey RGB masks whose greys are class colours (issue 19, item 1)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelwise.data import masks
from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask, stored_labels
from pixelwise.errors import PixelwiseError

BINARY = np.array([[0, 255], [255, 0]], np.uint8)  # only 0 and 255
IGNORING = np.array([[0, 1], [255, 1]], np.uint8)  # 255 beside label 1: 255 is the ignore label here


@pytest.fixture(autouse=True)
def _fresh_folders() -> None:
    # what each folder's 255 means is remembered per process; each test starts from a clean slate
    masks._read_255.clear()
    masks._declared_noticed.clear()


def _declared(tmp_path: Path, text: str = "classes: [background, cell]\nignore_index: 255\n") -> ClassSpec:
    (tmp_path / "classes.yaml").write_text(text)
    return ClassSpec.load(tmp_path / "classes.yaml")


def _save(folder: Path, name: str, labels: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels).save(folder / name)
    return folder / name


def test_a_declared_ignore_label_wins_over_the_0_255_guess_in_every_mask(tmp_path: Path) -> None:
    classes = _declared(tmp_path)
    assert classes.ignore_declared and classes == ClassSpec.default(2, names=("background", "cell"))
    binary = _save(tmp_path / "masks", "a.png", BINARY)
    other = _save(tmp_path / "masks", "b.png", IGNORING)
    with pytest.warns(UserWarning) as record:
        first = read_mask(binary, classes)
        second = read_mask(other, classes)
        again = read_mask(_save(tmp_path / "masks", "c.png", BINARY[::-1]), classes)
    np.testing.assert_array_equal(first, BINARY)  # 255 stays the ignore label: never made class 1
    np.testing.assert_array_equal(second, IGNORING)
    np.testing.assert_array_equal(again, BINARY[::-1])
    # one notice for the folder, and what it says is true of every 0/255 mask of it
    (notice,) = [str(warning.message) for warning in record]
    assert "a.png" in notice and "ignore_index: 255" in notice and "save the masks as 0/1" in notice


def test_without_a_declaration_a_0_255_mask_is_binary_with_a_true_notice(tmp_path: Path) -> None:
    with pytest.warns(UserWarning) as record:
        first = read_mask(_save(tmp_path / "masks", "a.png", BINARY), ClassSpec.default(2))
        second = read_mask(_save(tmp_path / "masks", "b.png", BINARY[::-1]), ClassSpec.default(2))
    np.testing.assert_array_equal(first, BINARY // 255)
    np.testing.assert_array_equal(second, BINARY[::-1] // 255)
    (notice,) = [str(warning.message) for warning in record]
    # no "(and others in ...)" claim: it says how the folder's 0/255 masks are read, and how to change that
    assert "and others" not in notice and "every 0/255 mask of" in notice and "ignore_index: 255" in notice


@pytest.mark.parametrize("binary_first", [True, False], ids=["binary-first", "ignore-first"])
def test_a_folder_using_255_in_two_ways_is_refused_whichever_mask_comes_first(
    tmp_path: Path, binary_first: bool
) -> None:
    binary = _save(tmp_path / "masks", "a.png", BINARY)
    other = _save(tmp_path / "masks", "b.png", IGNORING)
    first, second = (binary, other) if binary_first else (other, binary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_mask(first, ClassSpec.default(2))
        with pytest.raises(PixelwiseError, match=r"a\.png holds only 0 and 255 .*b\.png holds 255 beside label 1"):
            read_mask(second, ClassSpec.default(2))


def test_with_more_classes_a_0_255_mask_is_background_and_ignore_without_a_notice(tmp_path: Path) -> None:
    classes = _declared(tmp_path, "classes: [background, cell, edge]\nignore_index: 255\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_mask(_save(tmp_path / "masks", "a.png", BINARY), classes), BINARY)


def test_a_1_bit_mask_is_0_and_1_even_with_a_declared_ignore_label(tmp_path: Path) -> None:
    path = tmp_path / "bit.png"
    Image.fromarray(BINARY.astype(bool)).save(path)  # mode "1": Pillow's grey view of it is 0/255
    assert Image.open(path).mode == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/255 notice either: the file stores 0 and 1
        np.testing.assert_array_equal(read_mask(path, _declared(tmp_path)), BINARY // 255)
        np.testing.assert_array_equal(read_mask(path, ClassSpec.default(2)), BINARY // 255)


def test_a_grey_rgb_mask_whose_greys_are_class_colours_is_read_by_colour(tmp_path: Path) -> None:
    # black and white as the two classes' colours, 255 declared as ignore: white is the class, not ignore
    classes = _declared(
        tmp_path,
        "classes:\n  - {name: background, color: [0, 0, 0]}\n  - {name: cell, color: [255, 255, 255]}\n"
        "ignore_index: 255\n",
    )
    path = _save(tmp_path, "rgb.png", np.dstack([BINARY] * 3))
    np.testing.assert_array_equal(read_mask(path, classes), BINARY // 255)
    # a grey index mask saved as RGB still reads as its values where the greys are no class colours
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    np.testing.assert_array_equal(read_mask(_save(tmp_path, "index.png", np.dstack([labels] * 3)), classes), labels)


def test_stored_labels_reads_literally_and_says_nothing(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        binary = stored_labels(_save(tmp_path / "masks", "a.png", BINARY))
        other = stored_labels(_save(tmp_path / "masks", "b.png", IGNORING))
    assert binary.values.tolist() == [0, 255] and binary.zero_255 and not binary.ignore_beside_labels
    assert other.values.tolist() == [0, 1, 255] and not other.zero_255 and other.ignore_beside_labels


def test_a_mask_fixed_in_the_same_session_is_read_afresh(tmp_path: Path) -> None:
    other = _save(tmp_path / "masks", "b.png", IGNORING)
    read_mask(other, ClassSpec.default(2))  # the folder reads 255 as ignore
    _save(tmp_path / "masks", "b.png", IGNORING.clip(0, 1))  # the user fixes b.png: now 0 and 1 only
    os.utime(other, ns=(1, 1))  # a changed file, whatever the clock's resolution
    with pytest.warns(UserWarning, match=r"a\.png stores a binary mask as 0/255"):
        labels = read_mask(_save(tmp_path / "masks", "a.png", BINARY), ClassSpec.default(2))
    np.testing.assert_array_equal(labels, BINARY // 255)
