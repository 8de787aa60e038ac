"""``compare``: fit every method on the training split, predict every test image clean and under noise, score.

Every method sees the same seeded noisy images (``noise.apply_noise``); scores come from
``metrics.Evaluator``; a few examples are saved (``examples``); the result is ``results.json``
(``results``) and, through ``pixelwise.report``, the report.

Everything that can be checked is checked before any method fits (the data, every method's needs, the
values, the report folder). The report is written into a staging folder inside ``out_dir`` and replaces
the folder's earlier report (``REPORT_ENTRIES``) only when the run succeeded: a failed run leaves the old
report as it was, and a new report never mixes with an old run's files. A folder holding anything else
is refused, with or without ``overwrite``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelwise.comparison.examples import example_plan, file_name, save_example_inputs, save_example_prediction
from pixelwise.comparison.held_out import HeldOutImages, truth_of
from pixelwise.comparison.methods import Method, NetworkMethod, build_methods, default_method_names
from pixelwise.comparison.objects import ObjectScoring
from pixelwise.comparison.results import method_record, results_document, write_results
from pixelwise.errors import PixelwiseError
from pixelwise.noise import NoiseLevel, apply_noise, noise_sweep

if TYPE_CHECKING:
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.metrics import Scores
    from pixelwise.report.results import ComparisonResults


def compare(
    data: str | os.PathLike[str],
    *,
    methods: Sequence[str | Method] | None = None,
    out_dir: str | os.PathLike[str],
    noise: Sequence[NoiseLevel] | None = None,
    train_options: dict[str, Any] | None = None,
    classical_options: dict[str, dict[str, Any]] | None = None,
    classical_fit_images: int | None = None,
    dataset_options: dict[str, Any] | None = None,
    seed: int = 0,
    test_limit: int | None = None,
    num_examples: int = 3,
    boundary_tolerance: float = 2.0,
    progress: bool = True,
    report: bool = True,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> ComparisonResults:
    """Fit, predict and score every method on ``data``'s test split; write ``results.json`` and the report.

    data: a dataset folder or a built-in name (``dataset_options`` go to the built-in's exporter).
    methods: names for ``build_methods`` (or ``Method`` instances); None means ``default_method_names()``.
    noise: the sweep (``pixelwise.noise.noise_sweep()`` when None); the clean level is always scored.
    test_limit: score only the first N test images (None: all).
    overwrite: replace the report already in ``out_dir`` (without it, a non-empty ``out_dir`` is refused).
    Returns the results (``ComparisonResults``; its ``to_dict()`` is ``results.json``, schema in
    ``pixelwise.report.results``).
    """
    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.splits import available_splits
    from pixelwise.files import output_lock, staged_entries

    say = log or (lambda message: None)
    started = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PixelwiseError(f"{out}: exists and is not a folder; give another --out")
    chosen = build_methods(
        list(methods) if methods is not None else default_method_names(),
        train_options={"seed": seed, **(train_options or {})},
        classical_options=classical_options,
        classical_fit_images=classical_fit_images,
    )
    levels = _levels(noise)
    if test_limit is not None and test_limit < 1:
        raise PixelwiseError(f"test limit {test_limit}: give at least 1 (or no limit)")
    if num_examples < 0:
        raise PixelwiseError(f"{num_examples} examples: give 0 or more")
    if not boundary_tolerance >= 0:
        raise PixelwiseError(f"boundary tolerance {boundary_tolerance}: give a distance in pixels, 0 or more")

    root = dataset_root(str(data), **(dataset_options or {}))
    train = SegmentationFolder(root, split="train", seed=seed)
    # a train/ test/ layout may have no val/: the networks then keep the checkpoint of the lowest training loss
    has_val = "val" in available_splits(root)
    val = SegmentationFolder(root, split="val", seed=seed) if has_val else None
    test_folder = SegmentationFolder(root, split="test", seed=seed)
    _check_test_split(test_folder, root)
    if len(train) == 0:
        raise PixelwiseError(f"{root}: the training split is empty; add labelled images so methods can be fitted")
    for folder in (train, val):
        if folder is not None:
            folder.check()  # mask sizes, from the headers: a mismatch must not stop the run after hours
    for method in chosen:
        method.check(train)
    with output_lock(out):
        _check_report_folder(out, overwrite)
        with staged_entries(out, REPORT_ENTRIES) as stage:
            return _run(
                chosen, train, val, test_folder, levels, out=stage, data=str(data), root=root, seed=seed,
                test_limit=test_limit, num_examples=num_examples, boundary_tolerance=boundary_tolerance,
                progress=progress, report=report, say=say, started=started,
                settings={"train": dict(train_options or {}), "dataset": dict(dataset_options or {})},
            )  # fmt: skip


def _run(
    chosen: Sequence[Method],
    train: SegmentationFolder,
    val: SegmentationFolder | None,
    test_folder: SegmentationFolder,
    levels: list[NoiseLevel],
    *,
    out: Path,
    data: str,
    root: Path,
    seed: int,
    test_limit: int | None,
    num_examples: int,
    boundary_tolerance: float,
    progress: bool,
    report: bool,
    say: Callable[[str], None],
    started: float,
    settings: dict[str, Any],
) -> ComparisonResults:
    """The work, every check passed: fit, predict and score each method; write the results and the report."""
    from pixelwise.data.builtin import list_builtin
    from pixelwise.metrics import Evaluator
    from pixelwise.report.results import DatasetSummary

    test = HeldOutImages(test_folder, min(len(test_folder), test_limit or len(test_folder)))
    test.cache_if_small()
    classes = test_folder.classes
    builtin = list_builtin()
    name = str(data) if str(data) in builtin else Path(root).name
    say(
        f"dataset {name}: {len(train)} train, {len(val or [])} val, {test.limit} test images, "
        f"{classes.num_classes} classes; {len(chosen)} methods × {len(levels)} noise levels"
    )

    plan = example_plan(levels, test.limit, num_examples)
    examples = save_example_inputs(plan, test, levels, classes, out, seed)
    objects = ObjectScoring(test, classes)
    records = []
    for method in chosen:
        say(f"{method.name}: fitting ({method.description})")
        if isinstance(method, NetworkMethod):
            method.progress = progress
        with method.running():
            fit_started = time.perf_counter()
            method.fit(train, val if val else None, out / "models" / file_name(method.name))
            train_seconds = time.perf_counter() - fit_started
            object_evaluator = objects.evaluator() if objects.active else None
            clean_metrics, per_level, timings = _score(
                method,
                test,
                levels,
                evaluator=lambda: Evaluator(classes, boundary_tolerance=boundary_tolerance),
                seed=seed,
                save_example=partial(save_example_prediction, examples, plan, method.name, classes, out),
                progress=progress,
                objects=partial(objects.add, object_evaluator) if object_evaluator is not None else None,
            )
        records.append(
            method_record(
                method,
                metrics=clean_metrics,
                per_level=per_level,
                timings=timings,
                train_seconds=train_seconds,
                out=out,
                instances=object_evaluator.result() if object_evaluator is not None else None,
            )
        )
        say(f"{method.name}: mIoU {_format(clean_metrics.miou)} clean, fitted in {train_seconds:.1f} s")

    networks = [method for method in chosen if isinstance(method, NetworkMethod)]
    dataset = DatasetSummary(
        name=name,
        description=builtin.get(str(data), ""),
        root=str(root),
        classes=classes,
        in_channels=test_folder.in_channels,
        splits={"train": len(train), "val": len(val or []), "test": len(test_folder)},
        test_limit=test.limit,
        instances=objects.with_labels,
    )
    results = write_results(
        results_document(
            dataset=dataset,
            seed=seed,
            levels=levels,
            networks=networks,
            total_seconds=time.perf_counter() - started,
            methods=records,
            examples=examples,
            settings=settings,
        ),
        out,
    )
    if report:
        from pixelwise.report import write_report

        write_report(results, out)
    return results


# what a report folder holds: the entries a new report replaces
REPORT_ENTRIES = frozenset({"report.html", "report.md", "results.json", "figures", "examples", "models"})


def _check_report_folder(out: Path, overwrite: bool) -> None:
    """A report goes into an empty (or new) folder, or replaces the report of an earlier run with ``overwrite``;
    a folder holding anything else is refused either way, so that no user file is ever deleted."""
    from pixelwise.files import folder_entries

    entries = folder_entries(out)
    foreign = [entry.name for entry in entries if entry.name not in REPORT_ENTRIES]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise PixelwiseError(
            f"{out}: holds files that are not a pixelwise report ({shown}); a report replaces only an earlier "
            "report, so choose an empty or new --out"
        )
    if entries and not overwrite:
        raise PixelwiseError(
            f"{out}: holds an earlier report; add --overwrite to replace it (as a whole, once the new run has "
            "succeeded), or choose another --out"
        )


def _score(
    method: Method,
    test: HeldOutImages,
    levels: Sequence[NoiseLevel],
    *,
    evaluator: Callable[[], Any],
    seed: int,
    save_example: Callable[[str, int, np.ndarray], None],
    progress: bool,
    objects: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[Scores, dict[str, Scores], list[float]]:
    """Predict every test image at every noise level: (clean scores, scores per level, clean prediction
    times in seconds). ``objects(index, labels, truth)``: the clean predictions' objects scored."""
    from pixelwise.progress import progress_bar

    # one untimed call first: lazy initialisation (thread pools, caches) is not prediction time
    warm = test[0]
    method.predict(warm.image, truth_of(warm) if method.oracle else None)
    timings: list[float] = []
    per_level: dict[str, Scores] = {}
    with progress_bar(total=len(levels) * len(test), desc=f"{method.name:>16}", unit="img", quiet=not progress) as bar:
        for level_index, level in enumerate(levels):
            scores = evaluator()
            for index in range(len(test)):
                sample = test[index]
                truth = truth_of(sample)
                image = apply_noise(sample.image, level, seed=seed, index=index)
                started = time.perf_counter()
                labels = method.predict(image, truth if method.oracle else None)
                if level_index == 0:
                    timings.append(time.perf_counter() - started)
                    if objects is not None:
                        objects(index, labels, truth)
                scores.add(labels, truth, name=f"{method.name} on {sample.stem}")
                save_example(level.key, index, labels)
                bar.update(1)
            per_level[level.key] = scores.result()
    return per_level[levels[0].key], per_level, timings


def _levels(noise: Sequence[NoiseLevel] | None) -> list[NoiseLevel]:
    """The sweep with the clean level first, exactly once."""
    levels = list(noise) if noise is not None else noise_sweep()
    clean = NoiseLevel("gaussian", 0.0)
    return [clean, *(level for level in dict.fromkeys(levels) if level.amount > 0)]


def _check_test_split(test: SegmentationFolder, root: Path) -> None:
    """Fail before any method is fitted: an empty test split, or masks whose size differs from the image."""
    if len(test) == 0:
        raise PixelwiseError(
            f"{root}: the test split is empty (too few images to split off a test set); "
            "add images with masks, or a test/ folder with images/ and masks/"
        )
    test.check()


def _format(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
