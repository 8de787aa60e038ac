"""export_coco: a dataset as COCO RLE, and the round trip dataset -> COCO -> dataset that gives it back."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec
from pixelwise.data.importers import export_coco, import_dataset
from pixelwise.data.io import read_mask, write_mask
from pixelwise.errors import PixelwiseError

pytest.importorskip("pycocotools")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

CLASSES = ClassSpec(("background", "cell", "nucleus"), ((0, 0, 0), (255, 0, 0), (0, 200, 255)))


def dataset(tmp_path: Path, tools: SimpleNamespace, classes: ClassSpec = CLASSES, *, ignore: bool = False) -> Path:
    """A flat dataset folder of three images (PNG, JPEG, grey PNG) with masks using every class."""
    root = tmp_path / "cells"
    rng = np.random.default_rng(3)
    for index, (suffix, format) in enumerate(((".png", "PNG"), (".jpg", "JPEG"), (".png", "PNG"))):
        labels = rng.integers(0, classes.num_classes, (9, 13)).astype(np.uint8)
        labels[:3] = 0
        if ignore and index == 1:
            labels[0, :4] = classes.ignore_index
        image = tools.photo(9, 13, index) if index < 2 else tools.photo(9, 13, index)[:, :, 0]
        tools.write(root / "images" / f"c{index}{suffix}", tools.png_bytes(image, format=format))
        (root / "masks").mkdir(exist_ok=True)
        write_mask(root / "masks" / f"c{index}.png", labels, classes)
    classes.save(root / "classes.yaml")
    return root


def test_round_trip_gives_the_dataset_back(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    root = dataset(tmp_path, tools)
    report = export_coco(root, tmp_path / "coco.json")
    document = json.loads((tmp_path / "coco.json").read_text())
    assert report.images == 3 and report.categories == 3 and report.annotations == len(document["annotations"]) == 6
    assert document["categories"][1] == {"id": 2, "name": "cell", "supercategory": "", "color": [255, 0, 0]}
    assert {annotation["category_id"] for annotation in document["annotations"]} == {2, 3}  # no background
    import_dataset("coco", tmp_path / "coco.json", out, images=root / "images")
    classes, masks = tools.read_back(out)
    assert classes == CLASSES
    original = tools.read_back(root)[1]
    assert masks.keys() == original.keys()
    for stem, labels in original.items():
        np.testing.assert_array_equal(masks[stem], labels)
    for image in (root / "images").iterdir():
        assert (out / "images" / image.name).read_bytes() == image.read_bytes()


def test_round_trip_of_a_built_in_split(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    from pixelwise.data.builtin import export_builtin

    root = export_builtin("shapes", tmp_path / "shapes", count=4, size=24)
    export_coco(root, tmp_path / "train.json", split="train")
    import_dataset("coco", tmp_path / "train.json", out, images=root / "train" / "images")
    classes, masks = tools.read_back(out)
    assert classes == ClassSpec.load(root / "classes.yaml") and len(masks) == 4
    for path in sorted((root / "train" / "masks").iterdir()):
        np.testing.assert_array_equal(masks[path.stem], read_mask(path, classes))


def test_ignored_pixels_and_another_background_name_are_said(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    classes = ClassSpec(("void", "cell"), ((0, 0, 0), (255, 0, 0)))
    root = dataset(tmp_path, tools, classes, ignore=True)
    with pytest.warns(UserWarning) as notes:
        export_coco(root, tmp_path / "coco.json")
    said = " ".join(str(note.message) for note in notes)
    assert "1 image(s) hold ignored pixels (255: c1.jpg)" in said
    assert "import the file back with --background 'void'" in said
    import_dataset("coco", tmp_path / "coco.json", out, images=root / "images", background="void")
    imported, masks = tools.read_back(out)
    assert imported == classes
    expected = tools.read_back(root)[1]["c1"]
    expected[expected == 255] = 0  # COCO has no ignore label: they come back as the background
    np.testing.assert_array_equal(masks["c1"], expected)


def test_refusals(tmp_path: Path, tools: SimpleNamespace) -> None:
    root = dataset(tmp_path, tools)
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: export_coco(root, tmp_path / "coco.txt"), "a COCO file is JSON; give a path ending in .json"),
        (lambda: export_coco(root, root / "images" / "coco.json"), "a folder the inputs are read from"),
        (lambda: export_coco(tmp_path / "nothing", tmp_path / "a.json"), "is neither a folder nor a built-in dataset"),
    ]
    for run, message in cases:
        with pytest.raises(PixelwiseError, match=message):
            run()
    export_coco(root, tmp_path / "coco.json")
    with pytest.raises(PixelwiseError, match="exists; pass --overwrite"):
        export_coco(root, tmp_path / "coco.json")
    assert export_coco(root, tmp_path / "coco.json", overwrite=True).images == 3
    assert not list((root / "images").glob("*.json"))


def test_without_pycocotools_one_line_names_the_extra(
    tmp_path: Path, tools: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = dataset(tmp_path, tools)
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    with pytest.raises(
        PixelwiseError, match=r"exporting COCO needs pycocotools; install it with pip install 'pixelwise\[coco\]'"
    ):
        export_coco(root, tmp_path / "coco.json")
    assert not (tmp_path / "coco.json").exists()
