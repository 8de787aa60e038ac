"""COCO import: exports built with pycocotools itself, checked pixel by pixel against what pycocotools decodes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pixelwise.data.importers import import_dataset

mask_api = pytest.importorskip("pycocotools.mask")
# pycocotools' own NumPy 2 deprecation when the tests decode with it
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

HEIGHT, WIDTH = 20, 24


def decode(segmentation: Any) -> np.ndarray:
    """What pycocotools (COCO's annToRLE) makes of a segmentation: (H, W) bool."""
    if isinstance(segmentation, list):
        encoded = mask_api.merge(mask_api.frPyObjects(segmentation, HEIGHT, WIDTH))
    elif isinstance(segmentation["counts"], list):
        encoded = mask_api.frPyObjects(segmentation, HEIGHT, WIDTH)
    else:
        encoded = segmentation
    return mask_api.decode(encoded).astype(bool)


def blob(seed: int) -> np.ndarray:
    """A random region (H, W) bool, smooth enough to have a few runs per column."""
    rows, columns = np.mgrid[:HEIGHT, :WIDTH]
    rng = np.random.default_rng(seed)
    centre = rng.uniform([4, 4], [HEIGHT - 4, WIDTH - 4])
    return np.hypot(rows - centre[0], (columns - centre[1]) * 0.7) < rng.uniform(3, 6)


def uncompressed(binary: np.ndarray) -> dict[str, Any]:
    """An uncompressed RLE as COCO's iscrowd regions hold it: runs over the column-major pixels, 0s first."""
    flat = binary.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": [HEIGHT, WIDTH], "counts": np.diff(np.concatenate([[0], changes])).tolist()}


def export(tmp_path: Path, tools: SimpleNamespace, *, layout: str = "flat") -> tuple[Path, dict[str, Any]]:
    """A COCO export of two images with polygons (fractional, two parts), a compressed RLE, an uncompressed
    crowd RLE, categories of ids 12, 3, 7 and a colour on one of them."""
    compressed = mask_api.encode(np.asfortranarray(blob(1), dtype=np.uint8))
    document: dict[str, Any] = {
        "images": [
            {"id": 5, "file_name": "first.png", "height": HEIGHT, "width": WIDTH},
            {"id": 9, "file_name": "second.jpg", "height": HEIGHT, "width": WIDTH},
        ],
        "categories": [
            {"id": 12, "name": "tree", "supercategory": ""},
            {"id": 3, "name": "cat", "color": [10, 200, 30]},
            {"id": 7, "name": "dog"},
        ],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 3, "iscrowd": 0,
             "segmentation": [[1.2, 1.7, 10.4, 2.1, 9.6, 11.3, 2.5, 9.9], [14, 3, 20.5, 3, 17, 8.2]]},
            {"id": 2, "image_id": 5, "category_id": 12, "iscrowd": 0,
             "segmentation": {"size": [HEIGHT, WIDTH], "counts": compressed["counts"].decode()}},
            {"id": 3, "image_id": 9, "category_id": 7, "iscrowd": 1, "segmentation": uncompressed(blob(2))},
            {"id": 4, "image_id": 9, "category_id": 3, "iscrowd": 0,
             "segmentation": [[-3.0, -2.0, 14.0, -1.5, -2.5, 12.25]]},
        ],
    }  # fmt: skip
    images = tmp_path / ("images" if layout == "cvat" else "export")
    tools.write(images / "first.png", tools.png_bytes(tools.photo(HEIGHT, WIDTH, 0)))
    tools.write(images / "second.jpg", tools.png_bytes(tools.photo(HEIGHT, WIDTH, 1), format="JPEG"))
    json_file = (tmp_path / "annotations" if layout == "cvat" else images) / "instances.json"
    tools.write(json_file, json.dumps(document).encode())
    return json_file, document


def expected(document: dict[str, Any], image_id: int, values: dict[int, int], *, fill: int = 0) -> np.ndarray:
    labels = np.full((HEIGHT, WIDTH), fill, dtype=np.uint8)
    for annotation in document["annotations"]:
        if annotation["image_id"] == image_id:
            labels[decode(annotation["segmentation"])] = values[annotation["category_id"]]
    return labels


def test_polygons_and_rles_become_the_masks_pycocotools_decodes(
    tmp_path: Path, tools: SimpleNamespace, out: Path
) -> None:
    source, document = export(tmp_path, tools)
    report = import_dataset("coco", source, out)
    classes, masks = tools.read_back(out)
    # the categories in the order of their ids (3, 7, 12), after the background
    assert classes.names == ("background", "cat", "dog", "tree") and classes.ignore_index == 255
    assert classes.colors[1] == (10, 200, 30)
    values = {3: 1, 7: 2, 12: 3}
    np.testing.assert_array_equal(masks["first"], expected(document, 5, values))
    np.testing.assert_array_equal(masks["second"], expected(document, 9, values))
    assert set(np.unique(masks["first"])) == {0, 1, 3} and set(np.unique(masks["second"])) == {0, 1, 2}
    # images are copied as they are, JPEG included
    assert (out / "images" / "second.jpg").read_bytes() == (source.parent / "second.jpg").read_bytes()
    assert report.images == 2 and report.classes == classes


def test_random_polygons_match_pycocotools_pixel_by_pixel(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    rng = np.random.default_rng(7)
    tools.write(tmp_path / "a.png", tools.png_bytes(tools.photo(HEIGHT, WIDTH)))
    polygons = [rng.uniform(-2, 26, size=2 * rng.integers(3, 9)).round(rng.integers(0, 3)).tolist() for _ in range(12)]
    document = {
        "images": [{"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH}],
        "categories": [{"id": index + 1, "name": f"c{index:02d}"} for index in range(12)],
        "annotations": [
            {"id": index, "image_id": 1, "category_id": index + 1, "segmentation": [polygon]}
            for index, polygon in enumerate(polygons)
        ],
    }
    tools.write(tmp_path / "a.json", json.dumps(document).encode())
    import_dataset("coco", tmp_path / "a.json", out)
    _, masks = tools.read_back(out)
    np.testing.assert_array_equal(masks["a"], expected(document, 1, {index + 1: index + 1 for index in range(12)}))


def test_overlap_rules(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    """A small square listed first, a large one over it: later-on-top hides it, smaller-on-top keeps it."""
    tools.write(tmp_path / "a.png", tools.png_bytes(tools.photo(HEIGHT, WIDTH)))
    small, large = [[8, 8, 12, 8, 12, 12, 8, 12]], [[2, 2, 20, 2, 20, 18, 2, 18]]
    document = {
        "images": [{"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH}],
        "categories": [{"id": 1, "name": "small"}, {"id": 2, "name": "large"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": small},
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": large},
        ],
    }
    tools.write(tmp_path / "a.json", json.dumps(document).encode())
    import_dataset("coco", tmp_path / "a.json", out)
    assert 1 not in tools.read_back(out)[1]["a"]
    import_dataset("coco", tmp_path / "a.json", out, overwrite=True, overlap_rule="smaller-on-top")
    labels = tools.read_back(out)[1]["a"]
    np.testing.assert_array_equal(labels == 1, decode(small))
    np.testing.assert_array_equal(labels == 2, decode(large) & ~decode(small))


def test_uncovered_pixels_can_be_ignored_and_a_named_background_is_class_0(
    tmp_path: Path, tools: SimpleNamespace, out: Path
) -> None:
    source, document = export(tmp_path, tools)
    import_dataset("coco", source, out, uncovered="ignore")
    classes, masks = tools.read_back(out)
    assert classes.names == ("cat", "dog", "tree") and classes.ignore_index == 255
    np.testing.assert_array_equal(masks["first"], expected(document, 5, {3: 0, 7: 1, 12: 2}, fill=255))
    # the export names its background ("tree" here, with --background): it is class 0 and the uncovered pixels
    import_dataset("coco", source, out, overwrite=True, background="tree")
    classes, masks = tools.read_back(out)
    assert classes.names == ("tree", "cat", "dog")
    np.testing.assert_array_equal(masks["first"], expected(document, 5, {3: 1, 7: 2, 12: 0}))


def test_images_beside_an_annotations_folder_are_found(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    source, _ = export(tmp_path, tools, layout="cvat")  # annotations/instances.json + images/
    assert import_dataset("coco", source, out).images == 2


def test_an_image_without_annotations_is_kept_with_a_note_or_refused(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    source, document = export(tmp_path, tools)
    document["annotations"] = [entry for entry in document["annotations"] if entry["image_id"] == 5]
    source.write_text(json.dumps(document))
    refused(lambda: import_dataset("coco", source, out, empty_images="refuse"), "1 image(s) without annotations")
    with pytest.warns(UserWarning, match=r"second\.jpg\) are kept as all background"):
        import_dataset("coco", source, out)
    assert not tools.read_back(out)[1]["second"].any()


def broken(document: dict[str, Any], change: str) -> dict[str, Any]:
    annotations = document["annotations"]
    if change == "image id":
        annotations[0]["image_id"] = 99
    elif change == "category":
        annotations[1]["category_id"] = 4
    elif change == "two points":
        annotations[0]["segmentation"] = [[1, 1, 5, 5]]
    elif change == "short rle":
        annotations[2]["segmentation"]["counts"] = annotations[2]["segmentation"]["counts"][:-1]
    elif change == "bad characters":
        annotations[1]["segmentation"]["counts"] = "ab{}"
    elif change == "rle size":
        annotations[1]["segmentation"]["size"] = [WIDTH, HEIGHT]
    elif change == "not coco":
        del document["images"]
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("image id", "annotation 1 points at image id 99, which the file's images do not list"),
        ("category", "annotation 2 has category id 4, which the file's categories do not define"),
        ("two points", "a polygon of 2 point(s); a polygon needs at least 3"),
        ("short rle", "malformed RLE: its runs cover"),
        ("bad characters", "malformed RLE: '{' is not a character of COCO's counts"),
        ("rle size", "RLE size [24, 20] is not the image's [height, width] [20, 24]"),
        ("not coco", "no 'images' list; a COCO file has images, annotations and categories"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str], change: str, message: str
) -> None:
    source, document = export(tmp_path, tools)
    source.write_text(json.dumps(broken(document, change)))
    refused(lambda: import_dataset("coco", source, out), message)


def test_a_missing_image_file_and_broken_json_are_refused(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    source, _ = export(tmp_path, tools)
    (source.parent / "second.jpg").unlink()
    refused(lambda: import_dataset("coco", source, out), "image second.jpg is not in")
    source.write_text('{"images": [}')
    refused(lambda: import_dataset("coco", source, out), "not valid JSON (line 1, column 13")


def test_without_pycocotools_one_line_names_the_extra(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = export(tmp_path, tools)
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    refused(
        lambda: import_dataset("coco", source, out),
        "importing COCO needs pycocotools; install it with pip install 'pixelwise[coco]'",
    )
