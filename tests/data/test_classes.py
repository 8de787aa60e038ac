"""ClassSpec: reading classes.yaml in both forms, colours, and the errors a user meets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec, default_colors
from pixelwise.errors import PixelwiseError


def test_default_colors_follow_the_voc_map() -> None:
    assert default_colors(4) == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))


def test_load_list_form_with_and_without_colors(tmp_path: Path) -> None:
    file = tmp_path / "classes.yaml"
    file.write_text(
        "classes:\n  - background\n  - {name: nucleus, color: [255, 0, 0]}\n  - {name: edge, color: '#00ff00'}\nignore_index: 250\n"
    )
    spec = ClassSpec.load(file)
    assert spec.names == ("background", "nucleus", "edge")
    assert spec.colors == ((0, 0, 0), (255, 0, 0), (0, 255, 0))
    assert spec.ignore_index == 250


def test_load_parallel_lists_and_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "classes.yaml"
    file.write_text("names: [sky, ground]\ncolors: [[0, 0, 255], [0, 255, 0]]\n")
    spec = ClassSpec.load(file)
    spec.save(tmp_path / "again.yaml")
    assert ClassSpec.load(tmp_path / "again.yaml") == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("classes: []\n", "non-empty list"),
        ("names: [a, a]\n", "class name 'a' is given twice"),
        ("names: [a, b]\ncolors: [[1, 2, 3], [1, 2, 3]]\n", r"classes 'a' and 'b' have the same colour \[1, 2, 3\]"),
        ("names: [a, b]\ncolors: ['#zzzzzz', '#000000']\n", "colour '#zzzzzz' is not"),
        ("names: [a, b]\nignore_idx: 3\n", "unknown key 'ignore_idx'; did you mean 'ignore_index'"),
        ("classes: [a, {name: b, colour: [1, 2, 3]}]\n", "class b: unknown key 'colour'; did you mean 'color'"),
        ("names: [a, b]\nignore_index: none\n", "ignore_index 'none' is not a whole number"),
        ("names: [a, b]\ncolors: [[0, 0, 0]]\n", "one colour per class"),
        ("names: [a]\ncolors: [[0, 0, 300]]\n", "0..255"),
        ("names: [a, b]\nignore_index: 1\n", "also a class"),
        ("classes: [a\n", "not valid YAML at line 2, column 1"),
    ],
)
def test_bad_files_get_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "classes.yaml"
    file.write_text(text)
    with pytest.raises(PixelwiseError, match=message) as error:
        ClassSpec.load(file)
    assert "\n" not in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match="no such file"):
        ClassSpec.load(tmp_path / "nope.yaml")


def test_colorize_uses_class_colours_and_white_for_ignore() -> None:
    spec = ClassSpec(("a", "b"), ((0, 0, 0), (10, 20, 30)))
    colours = spec.colorize(np.array([[0, 1, 255]]))
    assert colours.tolist() == [[[0, 0, 0], [10, 20, 30], [255, 255, 255]]]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_given_as_classes_yaml_is_refused_without_reading_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "classes.yaml")  # reading it would wait for a writer forever
    with pytest.raises(PixelwiseError, match=r"classes\.yaml: not a regular file"):
        ClassSpec.load(tmp_path / "classes.yaml")
