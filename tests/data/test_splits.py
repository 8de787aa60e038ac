"""Which images a command uses: a split only when the user or the folder's own train/ val/ test/ says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwise.data.splits import (
    available_splits,
    dataset_layout,
    is_dataset_folder,
    resolve_split,
    split_stems,
)
from pixelwise.errors import PixelwiseError


def folders(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
    return root


def test_a_flat_folder_is_used_whole_unless_a_split_is_asked_for(tmp_path: Path) -> None:
    flat = folders(tmp_path, "images", "masks")
    assert dataset_layout(flat) == "flat" and is_dataset_folder(flat)
    assert resolve_split(flat, None) == "all"
    assert [resolve_split(flat, name) for name in ("train", "val", "test", "all")] == ["train", "val", "test", "all"]
    # training and compare still get all three, split by seed
    assert available_splits(flat) == ("train", "val", "test")


def test_split_folders_give_their_test_split_and_only_the_splits_present(tmp_path: Path) -> None:
    split = folders(tmp_path, "train/images", "train/masks", "test/images", "test/masks")
    assert dataset_layout(split) == "splits" and is_dataset_folder(split)
    assert resolve_split(split, None) == "test" and resolve_split(split, "train") == "train"
    assert available_splits(split) == ("train", "test")


def test_masks_alone_mark_the_layout_too(tmp_path: Path) -> None:
    assert dataset_layout(folders(tmp_path / "a", "masks"), files="masks") == "flat"
    assert resolve_split(tmp_path / "a", None, files="masks") == "all"
    assert dataset_layout(folders(tmp_path / "b", "test/masks"), files="masks") == "splits"
    assert resolve_split(tmp_path / "b", None, files="masks") == "test"
    plain = folders(tmp_path / "c")
    assert dataset_layout(plain) is None and not is_dataset_folder(plain)
    assert resolve_split(plain, None, files="masks") == "all"


def test_errors_name_the_folder_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match=r"split 'testing' is not one of train, val, test, all"):
        resolve_split(tmp_path, "testing")
    with pytest.raises(PixelwiseError, match=r"no images/ folder \(nor train/images\); put the images in"):
        available_splits(tmp_path)
    both = folders(tmp_path / "both", "images", "val/images")
    with pytest.raises(PixelwiseError, match=r"has both images/ and val/images; keep one layout"):
        resolve_split(both, None)
    with pytest.raises(PixelwiseError, match=r"must be in \[0, 1\)"):
        split_stems(["a", "b"], 0, 0.5, 0.5)


def test_adding_images_moves_few_between_splits() -> None:
    before = split_stems([f"s{index}" for index in range(100)], 0, 0.15, 0.15)
    after = split_stems([f"s{index}" for index in range(110)], 0, 0.15, 0.15)
    # ordering by hash: old stems keep their relative order; at most a couple cross the boundaries
    assert len(set(before["test"]) - set(after["test"])) <= 2
    assert not set(before["test"]) & set(after["train"])


@pytest.mark.parametrize(("count", "expected"), [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)), (10, (7, 2, 1))])
def test_split_counts_on_small_datasets(count: int, expected: tuple[int, int, int]) -> None:
    parts = split_stems([str(index) for index in range(count)], 0, 0.2, 0.1)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == expected
