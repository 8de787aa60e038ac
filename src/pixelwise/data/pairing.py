"""Which predicted mask is scored against which truth mask: the truth masks of a folder and pairing by stem.

``truth_masks`` finds the truth of a dataset folder or of a folder of masks alone, in the split the user
asked for (``data.splits`` decides the default); ``pair_by_stem`` pairs each truth with the prediction of
the same file stem and says what was left out. A score over fewer images than given must never pass for
the whole, so anything left out is an error unless the caller allows a partial score.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

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
    """The truth masks of one split, their classes (None when no class list was found) and the stems of every
    truth mask the folder has in any split (to tell a prediction of another split from a stray one)."""

    masks: list[Path]
    classes: ClassSpec | None
    every_stem: frozenset[str]


@dataclass(frozen=True)
class MaskPair:
    """A predicted mask and the truth mask of the same stem."""

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
    stems of every mask TRUTH has in any split.

    A dataset folder gives its masks through ``SegmentationFolder``; a folder of masks without their images
    (TRUTH/masks, TRUTH/<split>/masks or TRUTH itself) is read the same way, its classes from ``classes_file``
    or a ``classes.yaml`` beside the masks.
    """
    from pixelwise.data.folder import SegmentationFolder

    given = ClassSpec.load(classes_file) if classes_file is not None else None
    if is_dataset_folder(truth):
        dataset = SegmentationFolder(truth, split=resolve_split(truth, split), seed=seed, classes=given)
        every = SegmentationFolder(truth, split=ALL, classes=dataset.classes, in_channels=dataset.in_channels)
        return Truths(dataset.mask_paths, dataset.classes, frozenset(every.stems))
    masks, masks_dir = _masks_alone(truth, resolve_split(truth, split, files="masks"), seed)
    if given is None:
        for folder in (masks_dir, masks_dir.parent, masks_dir.parent.parent):
            if (folder / "classes.yaml").is_file():
                given = ClassSpec.load(folder / "classes.yaml")
                break
    return Truths(masks, given, frozenset(mask.stem for mask in _masks_alone(truth, ALL, seed)[0]))


def _masks_alone(truth: Path, split: str, seed: int) -> tuple[list[Path], Path]:
    """The masks of ``split`` in a folder of masks without images, and the (first) folder they are in."""
    from pixelwise.data.io import list_images

    if dataset_layout(truth, files="masks") == "splits":
        present = [name for name in SPLITS if (truth / name / "masks").is_dir()]
        if split != ALL and split not in present:
            raise PixelwiseError(
                f"{truth / split / 'masks'}: no such folder ({truth} has {', '.join(present)}); pick one with --split"
            )
        wanted = present if split == ALL else [split]
        return [mask for name in wanted for mask in list_images(truth / name / "masks")], truth / wanted[0] / "masks"
    masks_dir = truth / "masks" if (truth / "masks").is_dir() else truth
    masks = list_images(masks_dir)
    if split != ALL:
        # the same seeded split as the dataset folder these masks came from
        chosen = set(split_stems([mask.stem for mask in masks], seed, VAL_FRACTION, TEST_FRACTION)[split])
        masks = [mask for mask in masks if mask.stem in chosen]
    return masks, masks_dir


def pair_by_stem(
    predictions: list[Path],
    truths: list[Path],
    prediction_dir: Path,
    *,
    other_splits: Collection[str] = (),
    partial: bool = False,
) -> Pairing:
    """Each truth with the prediction of the same stem, and what was left out. Anything left out is an error
    unless ``partial``. Predictions of ``other_splits`` (stems whose truth is in a split not scored) are set
    aside with a note: the split was asked for.
    """
    by_stem = {path.stem: path for path in predictions}
    truth_stems = {path.stem for path in truths}
    elsewhere = [path for path in predictions if path.stem not in truth_stems and path.stem in other_splits]
    if elsewhere:
        warnings.warn(
            f"{len(elsewhere)} predictions in {prediction_dir} are of another split and not scored",
            UserWarning,
            stacklevel=2,
        )
    without_truth = [
        path.name for path in predictions if path.stem not in truth_stems and path.stem not in other_splits
    ]
    without_prediction = [path.name for path in truths if path.stem not in by_stem]
    if not partial:
        if without_prediction:
            raise PixelwiseError(
                f"{prediction_dir}: no prediction for {len(without_prediction)} of {len(truths)} truth masks "
                f"({_shown(without_prediction)}); predict those images too, or add --partial to score only the "
                "pairs found"
            )
        if without_truth:
            raise PixelwiseError(
                f"{prediction_dir}: {len(without_truth)} of {len(predictions)} predictions have no truth mask "
                f"({_shown(without_truth)}); remove them, or add --partial to score only the pairs found"
            )
    pairs = [MaskPair(by_stem[path.stem], path) for path in truths if path.stem in by_stem]
    return Pairing(pairs, without_truth, without_prediction)


def _shown(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
