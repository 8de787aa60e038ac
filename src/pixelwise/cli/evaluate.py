"""`pixelwise evaluate PRED_DIR TRUTH`: score predicted masks against the truth, per class and overall."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from pixelwise.cli.app import app, parse_key_values
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


def truth_masks(
    truth: Path, *, split: str | None, seed: int, classes_file: Path | None
) -> tuple[list[Path], ClassSpec | None]:
    """The truth masks and classes of TRUTH's ``split``; None: what its layout says (``data.splits``).

    A dataset folder gives its masks through ``SegmentationFolder``; a folder of masks without their images
    (TRUTH/masks, TRUTH/<split>/masks or TRUTH itself) is read the same way, its classes from ``--classes``
    or a ``classes.yaml`` beside the masks.
    """
    from pixelwise.data.folder import SegmentationFolder

    given = ClassSpec.load(classes_file) if classes_file is not None else None
    if is_dataset_folder(truth):
        dataset = SegmentationFolder(truth, split=resolve_split(truth, split), seed=seed, classes=given)
        return dataset.mask_paths, dataset.classes
    masks, masks_dir = _masks_alone(truth, resolve_split(truth, split, files="masks"), seed)
    if given is None:
        for folder in (masks_dir, masks_dir.parent, masks_dir.parent.parent):
            if (folder / "classes.yaml").is_file():
                given = ClassSpec.load(folder / "classes.yaml")
                break
    return masks, given


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


def pair_by_stem(predictions: list[Path], truths: list[Path], prediction_dir: Path) -> list[tuple[Path, Path]]:
    """Each truth with the prediction of the same stem; a truth without a prediction is an error."""
    by_stem = {path.stem: path for path in predictions}
    missing = [path.name for path in truths if path.stem not in by_stem]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise PixelwiseError(
            f"{prediction_dir}: no prediction for {len(missing)} of {len(truths)} truth masks ({shown}); "
            "predict those images too, or evaluate against a folder holding only the masks you predicted"
        )
    truth_stems = {path.stem for path in truths}
    extra = [path for path in predictions if path.stem not in truth_stems]
    if extra:
        print(
            f"note: {len(extra)} predictions in {prediction_dir} have no truth mask and are not scored", file=sys.stderr
        )
    return [(by_stem[path.stem], path) for path in truths]


@app.command()
def evaluate(
    prediction_dir: Path = typer.Argument(..., help="Folder of predicted masks (palette or index PNG), named by stem."),
    truth: Path = typer.Argument(
        ...,
        help="Folder of truth masks, a dataset folder or a built-in name: scored whole, or its test/ folder when "
        "it has train/ val/ test/ folders (--split chooses another).",
    ),
    classes_file: Path | None = typer.Option(None, "--classes", help="classes.yaml; default: the dataset's."),
    json_file: Path | None = typer.Option(None, "--json", help="Also write every score to this JSON file."),
    tolerance: float = typer.Option(2.0, help="Boundary F1 tolerance in pixels."),
    split: str | None = typer.Option(
        None,
        help="Score only this split of TRUTH: train, val, test or all. Default: test of a folder with train/ val/ "
        "test/ folders, every mask of any other (a --split of a flat folder is the seeded 70/15/15 split).",
    ),
    seed: int = typer.Option(0, help="Seed of a --split of a TRUTH without train/ val/ test/ folders."),
    data_option: list[str] = typer.Option(
        [], "--data-option", metavar="KEY=VALUE", help="Option of a built-in TRUTH dataset, e.g. count=500."
    ),
) -> None:
    """Score predictions against truth masks: IoU, Dice, accuracies, boundary F1, per class and overall."""
    from tqdm import tqdm

    from pixelwise.data.builtin import dataset_root
    from pixelwise.data.folder import infer_classes
    from pixelwise.data.io import list_images, read_mask
    from pixelwise.files import atomic_path
    from pixelwise.metrics import Evaluator, format_table

    if not prediction_dir.is_dir():
        raise PixelwiseError(f"{prediction_dir}: not a folder; give the folder of predicted masks")
    # TRUTH may name a built-in dataset, like DATA everywhere else
    truth = dataset_root(truth, **parse_key_values(data_option, "--data-option"))
    truth_paths, classes = truth_masks(truth, split=split, seed=seed, classes_file=classes_file)
    if not truth_paths:
        raise PixelwiseError(f"{truth}: no truth masks found; give the folder that holds them (or a dataset folder)")
    pairs = pair_by_stem(list_images(prediction_dir), truth_paths, prediction_dir)
    if classes is None:
        # no class list anywhere: the classes are 0..max over every mask, truth and prediction alike
        classes = infer_classes([path for pair in pairs for path in pair])
        print(
            f"note: no classes.yaml found; scoring classes 0..{classes.num_classes - 1} found in the masks",
            file=sys.stderr,
        )
    evaluator = Evaluator(classes, boundary_tolerance=tolerance)
    for prediction_path, truth_path in tqdm(pairs, desc="evaluate", unit="image", disable=None):
        prediction = read_mask(prediction_path, classes)
        truth_mask = read_mask(truth_path, classes)
        evaluator.add(prediction, truth_mask, name=str(prediction_path))
    result = evaluator.result()
    print(format_table(result))
    if json_file is not None:
        with atomic_path(json_file) as tmp:
            tmp.write_text(json.dumps(result, indent=2, allow_nan=False))
        print(f"scores written to {json_file}")
