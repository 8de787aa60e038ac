"""SegmentationFolder: both layouts, deterministic disjoint splits, class inference and every error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder import SegmentationFolder
from pixelwise.errors import PixelwiseError


def make_pair(root: Path, stem: str, *, label: int = 1, size: tuple[int, int] = (4, 5), rgb: bool = False) -> None:
    """images/<stem>.png (grey ramp or RGB) + masks/<stem>.png (label in the left column, 0 elsewhere)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    height, width = size
    grey = (np.arange(height * width).reshape(height, width) * 10 % 256).astype(np.uint8)
    Image.fromarray(np.dstack([grey, grey, 255 - grey]) if rgb else grey).save(root / "images" / f"{stem}.png")
    mask = np.zeros(size, np.uint8)
    mask[:, 0] = label
    Image.fromarray(mask).save(root / "masks" / f"{stem}.png")


def make_flat(root: Path, count: int, **options: object) -> Path:
    for index in range(count):
        make_pair(root, f"img_{index:03d}", **options)  # type: ignore[arg-type]
    return root


def test_flat_layout_splits_are_disjoint_complete_and_deterministic(tmp_path: Path) -> None:
    root = make_flat(tmp_path, 20)
    splits = {name: SegmentationFolder(root, name, seed=3) for name in ("train", "val", "test")}
    assert [len(splits[name]) for name in ("train", "val", "test")] == [14, 3, 3]
    stems = [set(split.stems) for split in splits.values()]
    assert not (stems[0] & stems[1]) and not (stems[0] & stems[2]) and not (stems[1] & stems[2])
    assert set().union(*stems) == set(SegmentationFolder(root, "all").stems)
    assert len(SegmentationFolder(root, "all")) == 20
    assert SegmentationFolder(root, "test", seed=3).stems == splits["test"].stems
    assert SegmentationFolder(root, "test", seed=4).stems != splits["test"].stems


def test_sample_contents_and_properties(tmp_path: Path) -> None:
    root = make_flat(tmp_path, 3)
    ClassSpec(("bg", "a", "b"), ((0, 0, 0), (1, 1, 1), (2, 2, 2))).save(root / "classes.yaml")
    data = SegmentationFolder(root, "all")
    image, mask, stem, path = data[1]
    assert image.shape == (4, 5, 1) and image.dtype == np.float32
    assert mask is not None and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask[:, 0], 1)
    assert mask[:, 1:].sum() == 0
    assert (stem, path) == ("img_001", root / "images" / "img_001.png")
    assert data.classes.names == ("bg", "a", "b")
    assert data.in_channels == 1 and data.root == root
    assert data.mask_paths[2] == root / "masks" / "img_002.png"
    assert data[-1].stem == "img_002" and [sample.stem for sample in data] == data.stems
    with pytest.raises(IndexError):
        data[3]


def test_mask_with_another_extension_and_unlabeled(tmp_path: Path) -> None:
    make_pair(tmp_path, "a")
    Image.open(tmp_path / "images" / "a.png").convert("RGB").save(tmp_path / "images" / "b.jpg")
    Image.open(tmp_path / "masks" / "a.png").save(tmp_path / "masks" / "b.tif")
    (tmp_path / "unlabeled").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "unlabeled" / "u.png")
    data = SegmentationFolder(tmp_path, "all")
    assert data.stems == ["a", "b"]
    assert data.mask_paths[1].name == "b.tif"
    assert data.unlabeled_paths == [tmp_path / "unlabeled" / "u.png"]


def test_classes_are_inferred_without_classes_yaml(tmp_path: Path) -> None:
    root = make_flat(tmp_path, 4)
    make_pair(root, "z", label=4)
    data = SegmentationFolder(root, "train")
    assert data.classes.num_classes == 5  # from the mask with label 4, even if it is in another split
    assert data.classes.names[0] == "class0"


def test_binary_0_255_masks_infer_two_classes(tmp_path: Path) -> None:
    make_flat(tmp_path, 3, label=255)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SegmentationFolder(tmp_path, "all")
        assert data.classes.names == ("background", "foreground")
        mask = data[0].mask
    assert mask is not None and set(np.unique(mask).tolist()) == {0, 1}


def test_split_layout(tmp_path: Path) -> None:
    make_flat(tmp_path / "train", 3)
    make_flat(tmp_path / "val", 1)
    assert len(SegmentationFolder(tmp_path, "train")) == 3
    assert len(SegmentationFolder(tmp_path, "val")) == 1
    assert len(SegmentationFolder(tmp_path, "all")) == 4
    with pytest.raises(PixelwiseError, match=r"test/images: no such folder \(this dataset has train, val\)"):
        SegmentationFolder(tmp_path, "test")


def test_channels_are_conformed_to_the_dataset(tmp_path: Path) -> None:
    make_pair(tmp_path, "a", rgb=True)
    make_pair(tmp_path, "b")  # a grey image in an RGB dataset
    data = SegmentationFolder(tmp_path, "all")
    assert data.in_channels == 3
    grey = data[1].image
    assert grey.shape == (4, 5, 3) and np.array_equal(grey[:, :, 0], grey[:, :, 2])
    as_grey = SegmentationFolder(tmp_path, "all", in_channels=1)[0].image
    rgb = data[0].image
    np.testing.assert_allclose(as_grey[:, :, 0], rgb @ np.array([0.2125, 0.7154, 0.0721]), atol=1e-5)


def test_check_finds_size_mismatches_upfront(tmp_path: Path) -> None:
    make_flat(tmp_path, 3)
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "masks" / "img_001.png")
    data = SegmentationFolder(tmp_path, "all")
    with pytest.raises(PixelwiseError, match=r"mask .*img_001\.png is 4x6 \(HxW\) but its image .*img_001\.png is 4x5"):
        data.check()
    with pytest.raises(PixelwiseError, match=r"img_001\.png is 4x6"):
        data[1]
    Image.fromarray(np.zeros((3, 5), np.uint8)).save(tmp_path / "masks" / "img_002.png")
    with pytest.raises(PixelwiseError, match=r"2 masks differ in size"):
        data.check()


def test_check_decode_finds_damaged_files(tmp_path: Path) -> None:
    make_flat(tmp_path, 2)
    data = SegmentationFolder(tmp_path, "all")
    data.check(decode=True)
    Image.fromarray(np.full((4, 5), 7, np.uint8)).save(tmp_path / "masks" / "img_001.png")
    with pytest.raises(PixelwiseError, match=r"img_001\.png has values \{7\}"):
        data.check(decode=True)


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match=r"nowhere: no such folder"):
        SegmentationFolder(tmp_path / "nowhere")
    with pytest.raises(PixelwiseError, match=r"no images/ folder .*put the images in"):
        SegmentationFolder(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(PixelwiseError, match=r"images is empty"):
        SegmentationFolder(tmp_path)
    with pytest.raises(PixelwiseError, match=r"split 'training' \(did you mean 'train'\?\) is not one of"):
        SegmentationFolder(tmp_path, "training")


def test_missing_masks_folder(tmp_path: Path) -> None:
    make_pair(tmp_path, "a")
    for path in (tmp_path / "masks").iterdir():
        path.unlink()
    (tmp_path / "masks").rmdir()
    with pytest.raises(PixelwiseError, match=r"masks: no such folder; put a mask per image there"):
        SegmentationFolder(tmp_path)


def test_images_without_masks_are_listed_with_their_count(tmp_path: Path) -> None:
    make_flat(tmp_path, 14)
    for index in range(12):
        (tmp_path / "masks" / f"img_{index:03d}.png").unlink()
    with pytest.raises(PixelwiseError, match=r"^12 image\(s\) in .* img_000\.png, .*img_009\.png and 2 more; add"):
        SegmentationFolder(tmp_path)


def test_masks_without_images(tmp_path: Path) -> None:
    make_flat(tmp_path, 2)
    (tmp_path / "images" / "img_001.png").unlink()
    with pytest.raises(PixelwiseError, match=r"1 mask\(s\) in .* have no image .*: img_001\.png; add their images"):
        SegmentationFolder(tmp_path, "all")


def test_same_stem_twice(tmp_path: Path) -> None:
    make_pair(tmp_path, "a")
    Image.open(tmp_path / "images" / "a.png").save(tmp_path / "images" / "a.tif")
    with pytest.raises(PixelwiseError, match=r"has a\.png and a\.tif with the same name"):
        SegmentationFolder(tmp_path)


def test_both_layouts_at_once_and_bad_fractions(tmp_path: Path) -> None:
    make_pair(tmp_path, "a")
    with pytest.raises(PixelwiseError, match=r"must be in \[0, 1\)"):
        SegmentationFolder(tmp_path, val_fraction=0.6, test_fraction=0.5)
    make_pair(tmp_path / "train", "a")
    with pytest.raises(PixelwiseError, match=r"has both images/ and train/images"):
        SegmentationFolder(tmp_path)


# --- what 255 means in a folder, and near misses in pairing (issue 19) ----------------------------------


def test_a_declared_ignore_label_keeps_255_as_ignore_in_every_mask(tmp_path: Path) -> None:
    make_pair(tmp_path, "a", label=255)  # only 0 and 255
    make_pair(tmp_path, "b", label=1)
    mask = np.asarray(Image.open(tmp_path / "masks" / "b.png")).copy()
    mask[0, 1] = 255
    Image.fromarray(mask).save(tmp_path / "masks" / "b.png")  # 0, 1 and 255
    (tmp_path / "classes.yaml").write_text("classes: [background, cell]\nignore_index: 255\n")
    with pytest.warns(UserWarning, match=r"a\.png holds only 0 and 255: read as background and the ignore label"):
        data = SegmentationFolder(tmp_path, "all")
        data.check(decode=True)
        first = data[0].mask
    assert first is not None and set(np.unique(first).tolist()) == {0, 255}


def test_masks_using_255_in_two_ways_are_refused_before_any_work(tmp_path: Path) -> None:
    make_pair(tmp_path, "a", label=255)  # a 0/255 binary mask: 255 would be the foreground
    make_pair(tmp_path, "b", label=1)
    mask = np.asarray(Image.open(tmp_path / "masks" / "b.png")).copy()
    mask[0, 1] = 255  # 255 beside label 1: here 255 is the ignore label
    Image.fromarray(mask).save(tmp_path / "masks" / "b.png")
    with pytest.raises(PixelwiseError, match=r"masks use 255 in two ways: .*a\.png holds only 0 and 255 .*b\.png"):
        SegmentationFolder(tmp_path, "all")


@pytest.mark.parametrize(
    ("image", "mask", "hint"),
    [
        ("IM00.PNG", "im00.png", r"masks/im00\.png differs from IM00\.PNG only in letter case"),
        ("cell_7.png", "cell_7_mask.png", r"masks/cell_7_mask\.png looks like the mask of cell_7\.png: .* '_mask'"),
        ("scan-12.tif", "scan_12.png", r"is masks/scan_12\.png the mask of scan-12\.tif\?"),
    ],
    ids=["case", "affix", "close"],
)
def test_an_image_without_its_mask_hints_at_a_near_match(tmp_path: Path, image: str, mask: str, hint: str) -> None:
    make_pair(tmp_path, "a")
    Image.open(tmp_path / "images" / "a.png").save(tmp_path / "images" / image)
    Image.open(tmp_path / "masks" / "a.png").save(tmp_path / "masks" / mask)
    with pytest.raises(PixelwiseError, match=rf"1 image\(s\) in .* have no mask .*: {image}; .*\({hint}"):
        SegmentationFolder(tmp_path, "all")
