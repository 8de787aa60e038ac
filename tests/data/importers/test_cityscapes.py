"""Cityscapes import: *_gtFine_labelIds.png label ids mapped to the 19 train ids, the other ids ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pixelwise.data.importers import import_dataset

# label id -> train id, a few rows of cityscapesscripts' table: unlabeled, road, guard rail, car, bicycle, sky
SOME_IDS = {0: 255, 7: 0, 14: 255, 26: 13, 33: 18, 23: 10}


def cityscapes(tmp_path: Path, tools: SimpleNamespace, extra: int | None = None) -> Path:
    root = tmp_path / "cityscapes"
    ids = np.array(list(SOME_IDS), dtype=np.uint8)
    for split, city, frame in (("train", "aachen", "000000_000019"), ("val", "lindau", "000001_000019")):
        labels = ids[np.random.default_rng(len(city)).integers(0, len(ids), (8, 12))]
        if extra is not None:
            labels[0, 0] = extra
        name = f"{city}_{frame}"
        tools.write(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", tools.png_bytes(labels))
        tools.write(root / "gtFine" / split / city / f"{name}_gtFine_color.png", tools.png_bytes(tools.photo(8, 12)))
        tools.write(
            root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", tools.png_bytes(tools.photo(8, 12))
        )
    return root


def test_label_ids_become_train_ids(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    root = cityscapes(tmp_path, tools)
    import_dataset("cityscapes", root, out)
    classes, masks = tools.read_back(out)
    assert len(classes.names) == 19 and classes.names[0] == "road" and classes.names[18] == "bicycle"
    assert classes.colors[13] == (0, 0, 142) and classes.ignore_index == 255
    assert set(masks) == {"aachen_000000_000019", "lindau_000001_000019"}
    for stem, mask in masks.items():
        split = "train" if stem.startswith("aachen") else "val"
        city = stem.split("_")[0]
        path = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
        from PIL import Image

        ids = np.asarray(Image.open(path))
        np.testing.assert_array_equal(mask, np.vectorize(SOME_IDS.get)(ids).astype(np.uint8))
    assert {path.name for path in (out / "images").iterdir()} == {f"{stem}.png" for stem in masks}


def test_a_value_that_is_no_label_id_and_a_missing_image_are_refused(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    root = cityscapes(tmp_path, tools, extra=40)
    refused(lambda: import_dataset("cityscapes", root, out), "has values [40], no Cityscapes label id (0..33)")
    next((root / "leftImg8bit" / "val").rglob("*.png")).unlink()
    refused(lambda: import_dataset("cityscapes", root, out), "no image lindau_000001_000019_leftImg8bit.png")
