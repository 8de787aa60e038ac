"""CVAT import: hand-written exports following CVAT's documented layouts ("Segmentation mask 1.1" zips and
"CVAT for images 1.1" XML), checked pixel by pixel."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pixelwise.data.importers import import_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")

LABELMAP = """# label:color_rgb:parts:actions
car:250,50,83::
background:0,0,0::
road:128,64,128::
"""
COLOURS = {0: (0, 0, 0), 1: (250, 50, 83), 2: (128, 64, 128)}  # by class index: background first


def truth(seed: int) -> np.ndarray:
    """(12, 16) class indices 0..2 in blocks."""
    labels = np.zeros((12, 16), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        top, left = rng.integers(0, 9), rng.integers(0, 13)
        labels[top : top + 4, left : left + 4] = rng.integers(1, 3)
    return labels


def mask_export(tmp_path: Path, tools: SimpleNamespace, *, images: bool = True, palette: bool = False) -> Path:
    """A "Segmentation mask 1.1" zip under a task folder: labelmap.txt, ImageSets, SegmentationClass colour
    masks (RGB, or palette PNGs whose palette holds the colours) and JPEGImages."""
    archive = tmp_path / "task.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("task_7/labelmap.txt", LABELMAP)
        bundle.writestr("task_7/ImageSets/Segmentation/default.txt", "frame_0\nframe_1\n")
        for index in range(2):
            labels = truth(index)
            if palette:
                table = [value for entry in range(256) for value in COLOURS.get(entry, (0, 0, 0))]
                data = tools.png_bytes(labels, palette=table)
            else:
                data = tools.png_bytes(np.array([COLOURS[value] for value in range(3)], np.uint8)[labels])
            bundle.writestr(f"task_7/SegmentationClass/frame_{index}.png", data)
            bundle.writestr(f"task_7/SegmentationObject/frame_{index}.png", data)
            if images:
                bundle.writestr(
                    f"task_7/JPEGImages/frame_{index}.jpg", tools.png_bytes(tools.photo(12, 16), format="JPEG")
                )
    return archive


@pytest.mark.parametrize("palette", [False, True], ids=["rgb", "palette"])
def test_a_segmentation_mask_zip(tmp_path: Path, tools: SimpleNamespace, out: Path, palette: bool) -> None:
    import_dataset("cvat", mask_export(tmp_path, tools, palette=palette), out)
    classes, masks = tools.read_back(out)
    assert classes.names == ("background", "car", "road")
    assert classes.colors == (COLOURS[0], COLOURS[1], COLOURS[2])
    for index in range(2):
        np.testing.assert_array_equal(masks[f"frame_{index}"], truth(index))


def test_a_mask_export_without_images_takes_them_from_images_dir(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    source = mask_export(tmp_path, tools, images=False)
    refused(lambda: import_dataset("cvat", source, out), "its image frame_0 is not in")
    for index in range(2):
        tools.write(tmp_path / "photos" / f"frame_{index}.png", tools.png_bytes(tools.photo(12, 16)))
    assert import_dataset("cvat", source, out, images=tmp_path / "photos").images == 2


def test_an_unknown_colour_and_a_zip_that_is_no_export_are_refused(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    source = mask_export(tmp_path, tools)
    with zipfile.ZipFile(source, "a") as bundle:
        bundle.writestr("task_7/SegmentationClass/frame_2.png", tools.png_bytes(np.full((12, 16, 3), 9, np.uint8)))
        bundle.writestr("task_7/JPEGImages/frame_2.jpg", tools.png_bytes(tools.photo(12, 16), format="JPEG"))
    refused(lambda: import_dataset("cvat", source, out), "has 1 colour(s) that no label of the export has: [9, 9, 9]")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as bundle:
        bundle.writestr("notes/readme.txt", "hello")
    refused(lambda: import_dataset("cvat", other, out), "not a CVAT export")
    (tmp_path / "fake.zip").write_text("not a zip")
    refused(lambda: import_dataset("cvat", tmp_path / "fake.zip", out), "not a zip file")


XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id><name>streets</name><size>2</size><mode>annotation</mode>
      <labels>
        <label><name>car</name><color>#fa3253</color><type>any</type><attributes></attributes></label>
        <label><name>road</name><color>#804080</color><type>any</type><attributes></attributes></label>
        <label><name>sign</name><color>#ffcc00</color><type>any</type><attributes></attributes></label>
      </labels>
    </task>
  </meta>
  <image id="0" name="street/a.png" width="16" height="12">
    <box label="road" source="manual" occluded="0" xtl="0" ytl="6" xbr="16" ybr="12" z_order="0"></box>
    <polygon label="car" source="manual" occluded="0" points="2.5,3.5;9.25,4;8,10.5;3,9" z_order="1"></polygon>
    <mask label="sign" source="manual" occluded="0" rle="1, 2, 1, 3, 1, 4" left="10" top="1" width="4" height="3" z_order="0"></mask>
    <polyline label="car" source="manual" occluded="0" points="0,0;5,5" z_order="0"></polyline>
  </image>
  <image id="1" name="street/b.png" width="16" height="12">
  </image>
</annotations>
"""


def xml_export(tmp_path: Path, tools: SimpleNamespace, xml: str = XML) -> Path:
    folder = tmp_path / "export"
    tools.write(folder / "annotations.xml", xml.encode())
    for name in ("a", "b"):
        tools.write(folder / "images" / "street" / f"{name}.png", tools.png_bytes(tools.photo(12, 16)))
    return folder


def test_cvat_for_images_xml(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    mask_api = pytest.importorskip("pycocotools.mask")
    source = xml_export(tmp_path, tools)
    with pytest.warns(UserWarning) as notes:
        import_dataset("cvat", source, out)
    said = " ".join(str(note.message) for note in notes)
    assert "skipped 1 <polyline>" in said and "1 image(s) without annotations (street/b.png)" in said
    classes, masks = tools.read_back(out)
    assert classes.names == ("background", "car", "road", "sign")
    assert classes.colors[1:] == ((250, 50, 83), (128, 64, 128), (255, 204, 0))
    expected = np.zeros((12, 16), dtype=np.uint8)
    expected[6:12, 0:16] = 2  # the box: pixels [xtl, xbr) x [ytl, ybr), as pycocotools draws its corners
    polygon = [[2.5, 3.5, 9.25, 4, 8, 10.5, 3, 9]]
    expected[mask_api.decode(mask_api.merge(mask_api.frPyObjects(polygon, 12, 16))).astype(bool)] = 1  # z_order 1
    # the mask's runs, row by row in its 4 x 3 box at (10, 1): 1 off, 2 on, 1 off, 3 on, 1 off, 4 on
    box = np.array([[0, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
    expected[1:4, 10:14][box] = 3
    np.testing.assert_array_equal(masks["a"], expected)
    assert not masks["b"].any()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_xml_file_and_its_zip_give_the_same_masks(tmp_path: Path, tools: SimpleNamespace, out: Path) -> None:
    pytest.importorskip("pycocotools")
    source = xml_export(tmp_path, tools)
    import_dataset("cvat", source / "annotations.xml", out)
    reference = tools.read_back(out)[1]
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(source).as_posix())
    import_dataset("cvat", archive, out, overwrite=True)
    for stem, labels in tools.read_back(out)[1].items():
        np.testing.assert_array_equal(labels, reference[stem])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('label="car" source="manual" occluded="0" points="2.5', 'label="bus" source="manual" occluded="0" points="2.5',
         "label 'bus' is not among the labels of <meta>"),
        ('points="2.5,3.5;9.25,4;8,10.5;3,9"', 'points="2.5,3.5;9.25,4"', "a polygon of 2 point(s)"),
        ('rle="1, 2, 1, 3, 1, 4"', 'rle="1, 2, 1, 3, 1"', "malformed mask RLE: its runs cover 8 pixels"),
        ('<image id="1"', '<track id="0" label="car"></track><image id="1"', "a 'CVAT for video' export"),
        ('name="street/a.png"', 'name="street/z.png"', "image 'street/z.png' is not in the export's images/"),
    ],
)  # fmt: skip
def test_bad_xml_is_one_line_and_writes_nothing(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str], old: str, new: str, message: str
) -> None:
    pytest.importorskip("pycocotools")
    assert old in XML
    source = xml_export(tmp_path, tools, XML.replace(old, new))
    refused(lambda: import_dataset("cvat", source, out), message)


def test_shape_options_are_refused_for_a_mask_export(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str]
) -> None:
    source = mask_export(tmp_path, tools)
    refused(lambda: import_dataset("cvat", source, out, uncovered="ignore"), "--uncovered is for shapes")


def test_xml_polygons_without_pycocotools_name_the_extra(
    tmp_path: Path, tools: SimpleNamespace, out: Path, refused: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = xml_export(tmp_path, tools)
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    refused(lambda: import_dataset("cvat", source, out), "rasterising CVAT polygons and boxes needs pycocotools")
    # a mask export needs no extra
    assert import_dataset("cvat", mask_export(tmp_path, tools), out).images == 2
