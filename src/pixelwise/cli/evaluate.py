"""`pixelwise evaluate PRED_DIR TRUTH`: score predicted masks against the truth, per class and overall."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from pixelwise.cli.app import app, parse_key_values
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError


def is_dataset_folder(folder: Path) -> bool:
    return (folder / "images").is_dir() or any(
        (folder / split / "images").is_dir() for split in ("train", "val", "test")
    )


def truth_masks(
    truth: Path, *, split: str, seed: int, classes_file: Path | None
) -> tuple[list[Path], ClassSpec | None]:
    """The truth masks and classes: a dataset folder's ``split`` (the same split `classical` and `predict`
    take by default), or every mask of a plain folder with ``--classes`` or a ``classes.yaml`` beside it."""
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.io import list_images

    given = ClassSpec.load(classes_file) if classes_file is not None else None
    if is_dataset_folder(truth):
        dataset = SegmentationFolder(truth, split=split, seed=seed, classes=given)
        return dataset.mask_paths, dataset.classes
    # masks without their images: TRUTH/<split>/masks, TRUTH/masks, or TRUTH itself
    masks_dir = next((d for d in (truth / split / "masks", truth / "masks") if d.is_dir()), truth)
    if given is None:
        for folder in (masks_dir, masks_dir.parent, masks_dir.parent.parent):
            if (folder / "classes.yaml").is_file():
                given = ClassSpec.load(folder / "classes.yaml")
                break
    return list_images(masks_dir), given


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
        ..., help="Folder of truth masks, a dataset folder or a built-in name (datasets: scored on their --split)."
    ),
    classes_file: Path | None = typer.Option(None, "--classes", help="classes.yaml; default: the dataset's."),
    json_file: Path | None = typer.Option(None, "--json", help="Also write every score to this JSON file."),
    tolerance: float = typer.Option(2.0, help="Boundary F1 tolerance in pixels."),
    split: str = typer.Option("test", help="Split of a dataset TRUTH: train, val, test or all."),
    seed: int = typer.Option(0, help="Split seed of a dataset TRUTH without train/val/test folders."),
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
