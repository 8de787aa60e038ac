"""Which images a command uses: the one place that decides between a folder's own splits and a seeded split.

A dataset folder has one of two layouts::

    root/images/a.png  root/masks/a.png                              "flat"
    root/train/images  root/train/masks  root/val/...  root/test/...   "splits"

The rule: a split is chosen by the user (``--split``) or by the folder's own ``train/ val/ test/`` folders,
never behind the user's back.

- A command that *uses* a folder's images (``evaluate`` on a truth folder, ``classical`` on a dataset)
  asks ``resolve_split(root, split)``: the split the user named, else ``test`` of a ``train/ val/ test/``
  folder and every image (``all``) of a flat one.
- Training and ``compare`` need a training, a validation and a test split: ``available_splits(root)``. A
  flat folder has all three, made by ``split_stems``: the stems are ordered by a hash of ``(seed, stem)``,
  the first ``round(n * test_fraction)`` are test, the next ``round(n * val_fraction)`` val, the rest train
  (70 / 15 / 15 % by default; at least one each when the fraction is above 0 and there are three images or
  more). Ordering by hash rather than shuffling the list means that adding images to the folder moves only
  a few images between splits instead of reshuffling them all, so an earlier test image does not end up in
  training.

>>> split_stems(["a", "b", "c", "d"], seed=0, val_fraction=0.25, test_fraction=0.25)
{'test': ['c'], 'val': ['d'], 'train': ['a', 'b']}
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pixelwise.errors import PixelwiseError

SPLITS = ("train", "val", "test")
ALL = "all"
# the seeded split of a flat folder: 70 / 15 / 15 %
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
Layout = Literal["flat", "splits"]


def dataset_layout(root: Path, *, files: str = "images") -> Layout | None:
    """``"flat"`` (``root/<files>/``), ``"splits"`` (``root/train/<files>/`` ...) or None (neither).

    ``files`` is the sub-folder that marks the layout: ``images``, or ``masks`` for a folder of truth
    masks without their images. Both layouts at once is an error: which images are meant would be a guess.
    """
    flat = (root / files).is_dir()
    splits = [name for name in SPLITS if (root / name / files).is_dir()]
    if flat and splits:
        raise PixelwiseError(
            f"{root} has both {files}/ and {splits[0]}/{files}; keep one layout ({files}/ alone, "
            f"or train/ val/ test/ each with their own {files}/)"
        )
    if flat:
        return "flat"
    return "splits" if splits else None


def is_dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` holds images in either layout (rather than being a plain folder of images)."""
    return (folder / "images").is_dir() or any((folder / name / "images").is_dir() for name in SPLITS)


def available_splits(root: Path) -> tuple[str, ...]:
    """The splits of a dataset folder: train, val and test for a flat one (seeded), else its folders."""
    layout = dataset_layout(root)
    if layout is None:
        raise PixelwiseError(
            f"{root}: no images/ folder (nor train/images); put the images in {root / 'images'} "
            f"and their masks, with the same file names, in {root / 'masks'}"
        )
    if layout == "flat":
        return SPLITS
    return tuple(name for name in SPLITS if (root / name / "images").is_dir())


def resolve_split(root: Path, split: str | None, *, files: str = "images") -> str:
    """The split a command uses: ``split`` when the user named one, else what the folder's layout says.

    None gives ``"test"`` for a ``train/ val/ test/`` folder and ``"all"`` for any other (a flat dataset
    folder, a folder of masks): a folder without split folders is used whole.
    """
    if split is None:
        return "test" if dataset_layout(root, files=files) == "splits" else ALL
    check_split(split)
    return split


def check_split(split: str) -> None:
    if split not in (*SPLITS, ALL):
        raise PixelwiseError(
            f"split {split!r} is not one of train, val, test, all; pick one of them "
            "(or none: a folder with train/ val/ test/ then gives its test split, any other folder all its images)"
        )


def split_stems(stems: Sequence[str], seed: int, val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Assign stems to train / val / test, deterministically from ``seed`` (see the module docstring).

    Returns {"test": [...], "val": [...], "train": [...]}, each sorted.
    """
    check_fractions(val_fraction, test_fraction)
    count = len(stems)
    test_count = round(count * test_fraction)
    val_count = round(count * val_fraction)
    if count >= 3:
        # a split asked for should not come out empty on a small dataset
        test_count = max(test_count, 1 if test_fraction > 0 else 0)
        val_count = max(val_count, 1 if val_fraction > 0 else 0)
    # training keeps at least one image
    while count and test_count + val_count >= count:
        if val_count >= test_count and val_count > 0:
            val_count -= 1
        else:
            test_count -= 1
    ordered = sorted(stems, key=lambda stem: hashlib.blake2b(f"{seed}\0{stem}".encode(), digest_size=8).digest())
    return {
        "test": sorted(ordered[:test_count]),
        "val": sorted(ordered[test_count : test_count + val_count]),
        "train": sorted(ordered[test_count + val_count :]),
    }


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise PixelwiseError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1) "
            "and leave images for training (sum below 1)"
        )
