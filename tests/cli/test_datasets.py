"""`pixelwise datasets import` and `export-coco`: labels from and to labelling tools, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pycocotools")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


def coco_export(folder: Path) -> Path:
    """Two 10 x 12 photos and a COCO file: a polygon on the first, nothing on the second."""
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(folder / name)
    document = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 10, "width": 12},
            {"id": 2, "file_name": "b.png", "height": 10, "width": 12},
        ],
        "categories": [{"id": 40, "name": "leaf"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 40, "segmentation": [[2, 2, 9, 2, 9, 8, 2, 8]]}],
    }
    (folder / "labels.json").write_text(json.dumps(document))
    return folder / "labels.json"


def test_import_then_export_coco(cli: Any, tmp_path: Path) -> None:
    source = coco_export(tmp_path / "export")
    result = cli("datasets", "import", "coco", source, "-o", tmp_path / "data", "-q")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == f"wrote 2 images of the coco export to {tmp_path / 'data'} (2 classes: background, leaf)"
    )
    assert result.stderr.count("note: ") == 1 and "1 image(s) without annotations (b.png)" in result.stderr
    # the folder is a dataset every command takes
    scores = cli("evaluate", tmp_path / "data" / "masks", tmp_path / "data")
    assert scores.returncode == 0, scores.stderr
    back = cli("datasets", "export-coco", tmp_path / "data", "-o", tmp_path / "back.json", "-q")
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == f"wrote 2 images, 1 annotations and 2 categories to {tmp_path / 'back.json'}"
    assert json.loads((tmp_path / "back.json").read_text())["categories"][1]["name"] == "leaf"


def test_refusals_are_one_line_with_exit_status_2(cli: Any, tmp_path: Path) -> None:
    source = coco_export(tmp_path / "export")
    for words, message in (
        (("coco", source, "--empty-images", "refuse"), "1 image(s) without annotations (b.png)"),
        (("voc", tmp_path / "export", "--overlap-rule", "later"), "--overlap-rule does not apply to voc exports"),
        (("labelmee", tmp_path / "export"), "no import format 'labelmee' (did you mean 'labelme'?)"),
        (("coco", source, "--uncovered", "nothing"), "--uncovered 'nothing' is not one of background, ignore"),
    ):
        result = cli("datasets", "import", *words, "-o", tmp_path / "data")
        assert result.returncode == 2 and result.stderr.startswith("pixelwise: error: "), result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert not (tmp_path / "data").exists()
    inside = ("coco", source, "--images", tmp_path / "export", "-o", tmp_path / "export" / "data")
    taken = cli("datasets", "import", *inside)
    assert taken.returncode == 2 and "inputs are never written" in taken.stderr


def test_the_help_lists_every_format(cli: Any) -> None:
    text = cli("datasets", "import", "-h").stdout
    for name in ("coco", "cvat", "labelme", "voc", "cityscapes"):
        assert f"\n  {name} " in text
