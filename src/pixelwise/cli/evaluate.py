"""`pixelwise evaluate PRED_DIR TRUTH`: score predicted masks against the truth, per class and overall."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from pathlib import Path

import typer

from pixelwise.cli.app import app, parse_key_values
from pixelwise.cli.options import (
    cluster_option,
    data_options_option,
    executor_for,
    out_option,
    out_or_old,
    overwrite_option,
    quiet_option,
    set_threads,
    threads_option,
    workers_option,
)
from pixelwise.data.classes import ClassSpec
from pixelwise.data.splits import (
    ALL,
    SPLITS,
    TEST_FRACTION,
    VAL_FRACTION,
    dataset_folders,
    dataset_layout,
    is_dataset_folder,
    resolve_split,
    split_stems,
)
from pixelwise.errors import PixelwiseError


def truth_masks(
    truth: Path, *, split: str | None, seed: int, classes_file: Path | None
) -> tuple[list[Path], ClassSpec | None, set[str]]:
    """The truth masks and classes of TRUTH's ``split`` (None: what its layout says, ``data.splits``), and the
    stems of every mask TRUTH has in any split.

    A dataset folder gives its masks through ``SegmentationFolder``; a folder of masks without their images
    (TRUTH/masks, TRUTH/<split>/masks or TRUTH itself) is read the same way, its classes from ``--classes``
    or a ``classes.yaml`` beside the masks.
    """
    from pixelwise.data.folder import SegmentationFolder

    given = ClassSpec.load(classes_file) if classes_file is not None else None
    if is_dataset_folder(truth):
        dataset = SegmentationFolder(truth, split=resolve_split(truth, split), seed=seed, classes=given)
        every = SegmentationFolder(truth, split=ALL, classes=dataset.classes, in_channels=dataset.in_channels)
        return dataset.mask_paths, dataset.classes, set(every.stems)
    masks, masks_dir = _masks_alone(truth, resolve_split(truth, split, files="masks"), seed)
    if given is None:
        for folder in (masks_dir, masks_dir.parent, masks_dir.parent.parent):
            if (folder / "classes.yaml").is_file():
                given = ClassSpec.load(folder / "classes.yaml")
                break
    return masks, given, {mask.stem for mask in _masks_alone(truth, ALL, seed)[0]}


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
) -> tuple[list[tuple[Path, Path]], dict[str, list[str]]]:
    """Each truth with the prediction of the same stem, and what was left out: ``{"predictions_without_truth":
    [names], "truths_without_prediction": [names]}``. Anything left out is an error unless ``partial``: a
    score over fewer images than given must never pass for the whole. Predictions of ``other_splits`` (stems
    whose truth is in a split not scored) are set aside with a note: the split was asked for.
    """
    by_stem = {path.stem: path for path in predictions}
    truth_stems = {path.stem for path in truths}
    elsewhere = [path for path in predictions if path.stem not in truth_stems and path.stem in other_splits]
    if elsewhere:
        print(
            f"note: {len(elsewhere)} predictions in {prediction_dir} are of another split and not scored",
            file=sys.stderr,
        )
    left_out = {
        "predictions_without_truth": [
            path.name for path in predictions if path.stem not in truth_stems and path.stem not in other_splits
        ],
        "truths_without_prediction": [path.name for path in truths if path.stem not in by_stem],
    }
    if not partial:
        if left_out["truths_without_prediction"]:
            missing = left_out["truths_without_prediction"]
            raise PixelwiseError(
                f"{prediction_dir}: no prediction for {len(missing)} of {len(truths)} truth masks ({_shown(missing)}); "
                "predict those images too, or add --partial to score only the pairs found"
            )
        if left_out["predictions_without_truth"]:
            extra = left_out["predictions_without_truth"]
            raise PixelwiseError(
                f"{prediction_dir}: {len(extra)} of {len(predictions)} predictions have no truth mask ({_shown(extra)}); "
                "remove them, or add --partial to score only the pairs found"
            )
    return [(by_stem[path.stem], path) for path in truths if path.stem in by_stem], left_out


def _shown(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


@app.command(
    epilog="""Examples:

\b
  pixelwise evaluate out/otsu nuclei
  pixelwise evaluate masks/ data/cells --split test -o scores.json
  pixelwise evaluate masks/ data/cells --workers 4"""
)
def evaluate(
    prediction_dir: Path = typer.Argument(
        ..., metavar="PREDICTIONS", help="Folder of predicted masks (palette or index PNG), named by stem."
    ),
    truth: Path = typer.Argument(
        ...,
        metavar="TRUTH",
        help="Folder of truth masks, a dataset folder or a built-in name: scored whole, or its test/ folder when "
        "it has train/ val/ test/ folders (--split chooses another).",
    ),
    json_file: Path | None = out_option("Also write every score to this JSON file.", default=None, metavar="FILE"),
    old_json_file: Path | None = typer.Option(None, "--json", hidden=True),  # the name before --out
    classes_file: Path | None = typer.Option(
        None, "--classes", metavar="FILE", help="classes.yaml.  [default: the dataset's]"
    ),
    tolerance: float = typer.Option(2.0, metavar="F", help="Boundary F1 tolerance in pixels."),
    overwrite: bool = overwrite_option("Replace an existing --out JSON file."),
    partial: bool = typer.Option(
        False,
        "--partial",
        help="Score only the predictions that have a truth mask (and the truths that have a prediction), and "
        "say how many were left out; without it, any left out is an error.",
    ),
    split: str | None = typer.Option(
        None,
        metavar="train|val|test|all",
        help="Score only this split of TRUTH. Default: test of a folder with train/ val/ test/ folders, every "
        "mask of any other (a --split of a flat folder is the seeded 70/15/15 split).",
    ),
    seed: int = typer.Option(0, metavar="N", help="Seed of a --split of a TRUTH without train/ val/ test/ folders."),
    data_option: list[str] = data_options_option("An option of a built-in TRUTH dataset, e.g. count=500."),
    threads: int | None = threads_option("Threads of the numeric libraries (OpenMP, BLAS)."),
    quiet: bool = quiet_option(),
    cluster: str | None = cluster_option(),
    workers: int | None = workers_option(),
) -> None:
    """Score predicted masks against the truth, per class and overall.

    IoU, Dice, pixel and class accuracy, boundary F1; a table on stdout, every score in JSON with --out.
    """
    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import infer_classes
    from pixelwise.data.io import list_images, read_mask
    from pixelwise.files import atomic_path, check_apart
    from pixelwise.metrics import Evaluator, format_table
    from pixelwise.progress import tracked
    from pixelwise.sinks import SIDE_FOLDERS

    json_file = out_or_old(json_file, old_json_file, old_name="--json")
    set_threads(threads, torch=False)
    if not prediction_dir.is_dir():
        raise PixelwiseError(f"{prediction_dir}: not a folder; give the folder of predicted masks")
    if not tolerance >= 0:
        raise PixelwiseError(f"--tolerance {tolerance}: give a distance in pixels, 0 or more")
    # TRUTH may name a built-in dataset, like DATA everywhere else
    truth = dataset_root(truth, **parse_key_values(data_option, "--data-option"))
    if json_file is not None:
        given = [classes_file] if classes_file is not None else []
        read = [prediction_dir, *dataset_folders(truth)]
        check_apart(json_file.parent, input_folders=read, input_files=given, targets=[json_file], flag="--out")
        if json_file.exists() and not overwrite:
            raise PixelwiseError(f"{json_file}: exists already; add --overwrite to replace it, or give another -o FILE")
    truth_paths, classes, every_stem = truth_masks(truth, split=split, seed=seed, classes_file=classes_file)
    if not truth_paths:
        raise PixelwiseError(f"{truth}: no truth masks found; give the folder that holds them (or a dataset folder)")
    pairs, left_out = pair_by_stem(
        list_images(prediction_dir, skip=SIDE_FOLDERS),
        truth_paths,
        prediction_dir,
        other_splits=every_stem,
        partial=partial,
    )
    if not pairs:
        raise PixelwiseError(f"{prediction_dir}: no prediction has a truth mask of the same name in {truth}")
    if classes is None:
        # no class list anywhere: the classes are 0..max over every mask, truth and prediction alike
        classes = infer_classes([path for pair in pairs for path in pair])
        print(
            f"note: no classes.yaml found; scoring classes 0..{classes.num_classes - 1} found in the masks",
            file=sys.stderr,
        )
    evaluator = Evaluator(classes, boundary_tolerance=tolerance)
    with executor_for(cluster, workers, threads=threads, quiet=quiet) as executor:
        if executor is not None:  # each image scored on a worker, the per-image counts summed here
            from pixelwise.cluster import score_pairs

            score_pairs(executor, pairs, evaluator, quiet=quiet)
        else:
            for prediction_path, truth_path in tracked(
                pairs, total=len(pairs), desc="evaluate", unit="image", quiet=quiet
            ):
                prediction = read_mask(prediction_path, classes)
                truth_mask = read_mask(truth_path, classes)
                evaluator.add(prediction, truth_mask, name=str(prediction_path))
    result = evaluator.result()
    print(format_table(result))
    skipped = {key: names for key, names in left_out.items() if names}
    if skipped:
        result["left_out"] = left_out
        counts = [f"{len(names)} {key.replace('_', ' ')}" for key, names in skipped.items()]
        print(f"partial score: {' and '.join(counts)} left out")
    if json_file is not None:
        with atomic_path(json_file) as tmp:
            tmp.write_text(json.dumps(result, indent=2, allow_nan=False))
        print(f"scores written to {json_file}")
