"""Pascal VOC import: SegmentationClass palette PNGs in VOC's palette (index = class, 255 = void)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pixelwise.data.classes import default_colors
from pixelwise.data.importers import import_dataset
from pixelwise.data.importers.voc import VOC_NAMES


def voc_folder(tmp_path: Path, tools: SimpleNamespace, labels: dict[str, np.ndarray]) -> Path:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    palette = np.array(default_colors(256))  # VOC's colour map for every index (255: its void colour)
    tools.write(root / "ImageSets" / "Segmentation" / "train.txt", "\n".join(labels).encode())
    for stem, mask in labels.items():
        tools.write(root / "SegmentationClass" / f"{stem}.png", tools.png_bytes(mask, palette=palette.ravel().tolist()))
        tools.write(root / "JPEGImages" / f"{stem}.jpg", tools.png_bytes(tools.photo(*mask.shape), format="JPEG"))
    # VOC's JPEGImages holds many images without segmentation masks: they are not imported
    tools.write(root / "JPEGImages" / "2007_999999.jpg", tools.png_bytes(tools.photo(8, 8), format="JPEG"))
    return tmp_path / "VOCdevkit"


def scene(seed: int) -> np.ndarray:
    labels = np.zeros((10, 14), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    top, left = rng.integers(0, 5, 2)
    labels[top : top + 5, left : left + 6] = rng.integers(1, 21)
    labels[top, left : left + 6] = 255  # VOC's void border
    return labels


def test_voc_palette_masks_keep_their_indices(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    labels = {"2007_000032": scene(0), "2007_000039": scene(1)}
    labels["2007_000039"][0, 0] = 15  # person
    import_dataset("voc", voc_folder(tmp_path, tools, labels), out)
    classes, masks = tools.read_back(out)
    assert classes.names == VOC_NAMES and len(VOC_NAMES) == 21 and classes.names[15] == "person"
    assert classes.ignore_index == 255 and classes.colors[15] == (192, 128, 128)
    assert masks.keys() == labels.keys()
    for stem, mask in labels.items():
        np.testing.assert_array_equal(masks[stem], mask)


def test_a_value_outside_the_classes_and_a_folder_without_masks_are_refused(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    bad = scene(2)
    bad[3, 3] = 30
    source = voc_folder(tmp_path, tools, {"a": bad})
    import_dataset_call = lambda: import_dataset("voc", source, out)  # noqa: E731
    # the values are only read when the masks are written: the refusal still leaves nothing behind
    refused(import_dataset_call, "has values [30] outside the classes 0..20 and 255 (ignore)")
    refused(
        lambda: import_dataset("voc", tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages", out), "not a VOC-style export"
    )
