"""`pixelwise evaluate PRED_DIR TRUTH`: score predicted masks against the truth, per class and overall."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from pixelwise.cli.app import app, parse_key_values
from pixelwise.cli.options import (
    cluster_option,
    data_options_option,
    executor_for,
    out_option,
    overwrite_option,
    quiet_option,
    set_threads,
    threads_option,
    workers_option,
)
from pixelwise.data.splits import dataset_folders
from pixelwise.errors import PixelwiseError


@app.command(
    epilog="""Examples:

\b
  pixelwise evaluate out/otsu nuclei
  pixelwise evaluate masks/ data/cells --split test -o scores.json
  pixelwise evaluate out/otsu nuclei --instances
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
    instances: bool = typer.Option(
        False,
        "--instances",
        help="Also score objects: PQ, F1 at IoU 0.5, AJI, count error. True objects from TRUTH's instances/ "
        "label images (else the masks' connected components); predicted ones from PREDICTIONS/instances/ "
        "(else found in the masks, touching ones split).",
    ),
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
    from pixelwise.data.pairing import pair_by_name, truth_masks, without_no_data
    from pixelwise.files import atomic_path, check_apart
    from pixelwise.instances.scores import format_scores
    from pixelwise.instances.truth import InstanceScoring
    from pixelwise.metrics import Evaluator, format_table
    from pixelwise.progress import tracked
    from pixelwise.sinks import SIDE_FOLDERS

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
    truths = truth_masks(truth, split=split, seed=seed, classes_file=classes_file)
    if not truths.masks:
        raise PixelwiseError(f"{truth}: no truth masks found; give the folder that holds them (or a dataset folder)")
    pairing = pair_by_name(list_images(prediction_dir, skip=SIDE_FOLDERS), prediction_dir, truths, partial=partial)
    pairs, left_out, classes = pairing.pairs, pairing.left_out, truths.classes
    if not pairs:
        raise PixelwiseError(f"{prediction_dir}: no prediction has a truth mask of the same name in {truth}")
    if classes is None:
        # no class list anywhere: the classes are 0..max over every mask, truth and prediction alike
        classes = infer_classes([path for pair in pairs for path in (pair.prediction, pair.truth)])
        print(
            f"note: no classes.yaml found; scoring classes 0..{classes.num_classes - 1} found in the masks",
            file=sys.stderr,
        )
    evaluator = Evaluator(classes, boundary_tolerance=tolerance)
    scoring = InstanceScoring(classes, prediction_folder=prediction_dir) if instances else None
    if scoring is not None and (cluster is not None or workers is not None):
        raise PixelwiseError("--instances scores objects in this process; drop --cluster/--workers to use it")
    with executor_for(cluster, workers, threads=threads, quiet=quiet) as executor:
        if executor is not None:  # each image scored on a worker, the per-image counts summed here
            from pixelwise.cluster import score_pairs

            left_without_data = score_pairs(
                executor, [(pair.prediction, pair.truth) for pair in pairs], evaluator, quiet=quiet
            )
        else:
            left_without_data = 0
            for pair in tracked(pairs, total=len(pairs), desc="evaluate", unit="image", quiet=quiet):
                prediction = read_mask(pair.prediction, classes)
                truth_mask, no_data = without_no_data(prediction, read_mask(pair.truth, classes), classes)
                left_without_data += no_data
                evaluator.add(prediction, truth_mask, name=str(pair.prediction))
                if scoring is not None:
                    scoring.add(pair.prediction, prediction, pair.truth, truth_mask)
    scores = evaluator.result()
    if left_without_data:
        print(
            f"note: {left_without_data:,} pixels the predictions mark as no data ({classes.ignore_index}) are left out",
            file=sys.stderr,
        )
    print(format_table(scores))
    result = scores.to_dict()
    if scoring is not None:
        for note in scoring.notes():
            print(note, file=sys.stderr)
        object_scores = scoring.evaluator.result()
        print(f"\n{format_scores(object_scores)}")
        result["instances"] = object_scores.to_dict()
    skipped = {key: names for key, names in left_out.items() if names}
    if skipped:
        result["left_out"] = left_out
        counts = [f"{len(names)} {key.replace('_', ' ')}" for key, names in skipped.items()]
        print(f"partial score: {' and '.join(counts)} left out")
    if json_file is not None:
        with atomic_path(json_file) as tmp:
            tmp.write_text(json.dumps(result, indent=2, allow_nan=False))
        print(f"scores written to {json_file}")
