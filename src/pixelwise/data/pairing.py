"""Which predicted mask is scored against which truth mask: the truth masks of a folder and pairing by name.

``truth_masks`` finds the truth of a dataset folder or of a folder of masks alone, in the split the user
asked for (``data.splits`` decides the default); ``pair_by_name`` pairs each truth with the prediction of
the same name (``data.io.image_name``: the path within its folder without the suffix, so ``batch2/a`` and
``a`` are two images) and says what was left out. A score over fewer images than given must never pass for
the whole, so anything left out is an error unless the caller allows a partial score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.splits import (
    ALL,
    SPLITS,
    TEST_FRACTION,
    VAL_FRACTION,
    dataset_layout,
    is_dataset_folder,
    resolve_split,
    split_stems,
)
from pixelwise.errors import PixelwiseError


@dataclass(frozen=True)
class Truths:
    """The truth masks of one split and their names (``names[i]`` is ``masks[i]``'s), their classes (None when
    no class list was found) and the names of every truth mask the folder has in any split (to tell a
    prediction of another split from a stray one)."""

    masks: list[Path]
    names: list[str]
    classes: ClassSpec | None
    every_name: frozenset[str]


@dataclass(frozen=True)
class MaskPair:
    """A predicted mask and the truth mask of the same name."""

    prediction: Path
    truth: Path


@dataclass(frozen=True)
class Pairing:
    """The pairs to score, in the truths' order, and the file names that were left out on either side."""

    pairs: list[MaskPair]
    predictions_without_truth: list[str]
    truths_without_prediction: list[str]

    @property
    def left_out(self) -> dict[str, list[str]]:
        """What was left out, as the ``left_out`` entry of ``evaluate``'s JSON."""
        return {
            "predictions_without_truth": self.predictions_without_truth,
            "truths_without_prediction": self.truths_without_prediction,
        }


def truth_masks(truth: Path, *, split: str | None, seed: int, classes_file: Path | None) -> Truths:
    """The truth masks and classes of TRUTH's ``split`` (None: what its layout says, ``data.splits``), and the
    names of every mask TRUTH has in any split.

    A dataset folder gives its masks through ``SegmentationFolder``; a folder of masks without their images
    (TRUTH/masks, TRUTH/<split>/masks or TRUTH itself) is read the same way, its classes from ``classes_file``
    or a ``classes.yaml`` beside the masks.
    """
    from pixelwise.data.folder import SegmentationFolder

    given = ClassSpec.load(classes_file) if classes_file is not None else None
    if is_dataset_folder(truth):
        dataset = SegmentationFolder(truth, split=resolve_split(truth, split), seed=seed, classes=given)
        every = SegmentationFolder(truth, split=ALL, classes=dataset.classes, in_channels=dataset.in_channels)
        return Truths(dataset.mask_paths, list(dataset.stems), dataset.classes, frozenset(every.stems))
    named, masks_dir = _masks_alone(truth, resolve_split(truth, split, files="masks"), seed)
    if given is None:
        for folder in (masks_dir, masks_dir.parent, masks_dir.parent.parent):
            if (folder / "classes.yaml").is_file():
                given = ClassSpec.load(folder / "classes.yaml")
                break
    every_name = frozenset(name for name, _ in _masks_alone(truth, ALL, seed)[0])
    return Truths([mask for _, mask in named], [name for name, _ in named], given, every_name)


def _masks_alone(truth: Path, split: str, seed: int) -> tuple[list[tuple[str, Path]], Path]:
    """(name, mask) of ``split`` in a folder of masks without images, and the (first) folder they are in."""
    from pixelwise.data.io import image_name, list_images

    def named(folder: Path) -> list[tuple[str, Path]]:
        return [(image_name(mask, folder), mask) for mask in list_images(folder)]

    if dataset_layout(truth, files="masks") == "splits":
        present = [name for name in SPLITS if (truth / name / "masks").is_dir()]
        if split != ALL and split not in present:
            raise PixelwiseError(
                f"{truth / split / 'masks'}: no such folder ({truth} has {', '.join(present)}); pick one with --split"
            )
        wanted = present if split == ALL else [split]
        return [pair for name in wanted for pair in named(truth / name / "masks")], truth / wanted[0] / "masks"
    masks_dir = truth / "masks" if (truth / "masks").is_dir() else truth
    masks = named(masks_dir)
    if split != ALL:
        # the same seeded split as the dataset folder these masks came from
        chosen = set(split_stems([name for name, _ in masks], seed, VAL_FRACTION, TEST_FRACTION)[split])
        masks = [(name, mask) for name, mask in masks if name in chosen]
    return masks, masks_dir


def pair_by_name(predictions: list[Path], prediction_dir: Path, truths: Truths, *, partial: bool = False) -> Pairing:
    """Each truth with the prediction of the same name (``predictions`` are files of ``prediction_dir`` or its
    sub-folders), and what was left out. Anything left out is an error unless ``partial``. Predictions of
    another split (names of ``truths.every_name`` not scored here) are set aside with a note: the split was
    asked for.
    """
    from pixelwise.data.io import image_name

    by_name = {image_name(path, prediction_dir): path for path in predictions}
    wanted = set(truths.names)
    elsewhere = [name for name in by_name if name not in wanted and name in truths.every_name]
    if elsewhere:
        warnings.warn(
            f"{len(elsewhere)} predictions in {prediction_dir} are of another split and not scored",
            UserWarning,
            stacklevel=2,
        )
    without_truth = [
        by_name[name].relative_to(prediction_dir).as_posix()
        for name in by_name
        if name not in wanted and name not in truths.every_name
    ]
    without_prediction = [
        _shown_name(mask, name) for name, mask in zip(truths.names, truths.masks, strict=True) if name not in by_name
    ]
    if not partial:
        if without_prediction:
            raise PixelwiseError(
                f"{prediction_dir}: no prediction for {len(without_prediction)} of {len(truths.masks)} truth masks "
                f"({_shown(without_prediction)}); predict those images too, or add --partial to score only the "
                "pairs found"
            )
        if without_truth:
            raise PixelwiseError(
                f"{prediction_dir}: {len(without_truth)} of {len(predictions)} predictions have no truth mask "
                f"({_shown(without_truth)}); remove them, or add --partial to score only the pairs found"
            )
    pairs = [
        MaskPair(by_name[name], mask) for name, mask in zip(truths.names, truths.masks, strict=True) if name in by_name
    ]
    return Pairing(pairs, without_truth, without_prediction)


def _shown_name(mask: Path, name: str) -> str:
    """A truth mask as a message names it: its file name, with its sub-folder when it has one."""
    return f"{name.rpartition('/')[0]}/{mask.name}" if "/" in name else mask.name


def without_no_data(prediction: np.ndarray, truth: np.ndarray, classes: ClassSpec) -> tuple[np.ndarray, int]:
    """The truth with the pixels a prediction marks as no data (its ignore label: ``predict`` writes it where
    the image held no data, ``data.bands``) made ignore too, so they leave the score; and how many there were."""
    no_data = prediction == classes.ignore_index
    count = int(no_data.sum())
    if not count:
        return truth, 0
    return np.where(no_data, np.uint8(classes.ignore_index), truth), count


def _shown(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
