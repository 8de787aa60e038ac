"""LabelMe import: JSON files written as LabelMe writes them (its published format), checked pixel by pixel."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pixelwise.data.importers import import_dataset


def labelme_file(shapes: list[dict[str, Any]], *, image_path: str | None, image_data: bytes | None = None) -> bytes:
    document = {
        "version": "5.5.0",
        "flags": {},
        "shapes": [
            {"label": shape["label"], "points": shape["points"], "group_id": None, "description": "",
             "shape_type": shape.get("shape_type", "polygon"), "flags": {}, "mask": shape.get("mask")}
            for shape in shapes
        ],
        "imagePath": image_path,
        "imageData": base64.b64encode(image_data).decode() if image_data is not None else None,
        "imageHeight": 20,
        "imageWidth": 24,
    }  # fmt: skip
    return json.dumps(document, indent=2).encode()


def folder(tmp_path: Path, tools: SimpleNamespace) -> Path:
    """a.json (rectangle, polygon, circle, line; image beside it), b.json (image embedded, an ignore region,
    a mask shape), c.json (a point only)."""
    source = tmp_path / "labels"
    tools.write(source / "a.jpg", tools.png_bytes(tools.photo(20, 24, 0), format="JPEG"))
    a_shapes = [
        {"label": "sky", "points": [[6, 8], [2, 3]], "shape_type": "rectangle"},  # corners in either order
        {"label": "tree", "points": [[10, 2], [14, 2], [14, 6], [10, 6]]},
        {"label": "sky", "points": [[18.0, 12.0], [18.0, 16.5]], "shape_type": "circle"},
        {"label": "tree", "points": [[0, 19], [23, 19]], "shape_type": "line"},
    ]
    tools.write(source / "a.json", labelme_file(a_shapes, image_path="a.jpg"))
    embedded_mask = tools.png_bytes(np.array([[0, 255, 255], [255, 255, 0]], np.uint8))
    b_shapes = [
        {"label": "_background_", "points": [[0, 0], [23, 0], [23, 19], [0, 19]]},
        {"label": "tree", "points": [[4, 4], [12, 4], [12, 12], [4, 12]]},
        {"label": "__ignore__", "points": [[6, 6], [8, 6], [8, 8], [6, 8]]},
        {
            "label": "sky",
            "points": [[20, 1], [22, 2]],
            "shape_type": "mask",
            "mask": base64.b64encode(embedded_mask).decode(),
        },
    ]
    tools.write(
        source / "b.json",
        labelme_file(b_shapes, image_path="gone.png", image_data=tools.png_bytes(tools.photo(20, 24, 1))),
    )
    tools.write(source / "c.png", tools.png_bytes(tools.photo(20, 24, 2)))
    tools.write(
        source / "c.json",
        labelme_file([{"label": "sky", "points": [[3, 3]], "shape_type": "point"}], image_path="c.png"),
    )
    return source


def test_polygons_rectangles_circles_and_masks(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    source = folder(tmp_path, tools)
    with pytest.warns(UserWarning) as notes:
        import_dataset("labelme", source, out)
    said = " ".join(str(note.message) for note in notes)
    assert "skipped 1 line shape(s), 1 point shape(s)" in said and "without annotations (c.json)" in said
    classes, masks = tools.read_back(out)
    assert classes.names == ("_background_", "sky", "tree")  # LabelMe's background name, then sorted
    a = masks["a"]
    expected = np.zeros((20, 24), dtype=np.uint8)
    expected[3:9, 2:7] = 1  # a rectangle covers both corners' pixels, as Pillow draws it for LabelMe
    expected[2:7, 10:15] = 2  # a polygon with its outline
    rows, columns = np.mgrid[:20, :24]
    distance = np.hypot(rows - 12.0, columns - 18.0)
    assert (a[distance <= 4.0] == 1).all()  # the circle of radius 4.5 around (x 18, y 12), up to its rim
    far = distance >= 5.5
    np.testing.assert_array_equal(a[far], expected[far])
    expected = np.zeros((20, 24), dtype=np.uint8)  # b: the background polygon paints class 0 over everything
    expected[4:13, 4:13] = 2
    expected[6:9, 6:9] = 255  # __ignore__
    expected[1:3, 20:23][np.array([[0, 1, 1], [1, 1, 0]], bool)] = 1  # the mask shape, at its box's corner
    np.testing.assert_array_equal(masks["b"], expected)
    assert not masks["c"].any()
    # the embedded image became a file of its own; the other is copied as it is
    assert (out / "images" / "b.png").is_file()
    assert (out / "images" / "a.jpg").read_bytes() == (source / "a.jpg").read_bytes()


def test_images_dir_and_ignored_uncovered_pixels(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    source = tmp_path / "labels"
    tools.write(
        source / "a.json",
        labelme_file([{"label": "cat", "points": [[1, 1], [5, 1], [5, 5]]}], image_path="..\\photos\\a.png"),
    )
    tools.write(tmp_path / "elsewhere" / "a.png", tools.png_bytes(tools.photo(20, 24)))
    import_dataset("labelme", source, out, images=tmp_path / "elsewhere", uncovered="ignore")
    classes, masks = tools.read_back(out)
    assert classes.names == ("cat",)
    assert set(np.unique(masks["a"])) == {0, 255} and masks["a"][1, 1] == 0 and masks["a"][10, 10] == 255


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ([{"label": "cat", "points": [[1, 1], [5, 5]]}], "a polygon of 2 point(s); a polygon needs at least 3"),
        ([{"label": "cat", "points": [[1, 1]], "shape_type": "circle"}], "a circle has 2 points, this one 1"),
        (
            [{"label": "cat", "points": [[1, 1], [2, 2], [3, 1]], "shape_type": "blob"}],
            "shape_type 'blob' is not one of LabelMe's",
        ),
        ([{"label": "cat", "points": [[1, "x"], [2, 2], [3, 1]]}], "y 'x' is not a number"),
    ],
)
def test_bad_shapes_are_one_line(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str], shapes: list[Any], message: str
) -> None:
    source = tmp_path / "labels"
    tools.write(source / "a.png", tools.png_bytes(tools.photo(20, 24)))
    tools.write(source / "a.json", labelme_file(shapes, image_path="a.png"))
    refused(lambda: import_dataset("labelme", source, out), message)


def test_a_missing_image_and_a_foreign_json_are_refused(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    source = tmp_path / "labels"
    tools.write(source / "a.json", labelme_file([], image_path="a.png"))
    refused(lambda: import_dataset("labelme", source, out), "a.png is not there")
    tools.write(source / "a.json", b'{"images": []}')
    refused(lambda: import_dataset("labelme", source, out), "not a LabelMe file (no 'shapes' list)")
