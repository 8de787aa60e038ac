"""`pixelwise classical METHOD INPUT --out DIR`: segment images with a classical method, no network.

A classical method partitions an image into regions; it does not know which region is which class. So:

- ``--fit TRAIN_DATA``: learn region -> class on TRAIN_DATA's train split (a dataset folder or a built-in
  name), then write class masks (palette PNG). ``--save-fit FILE.json`` keeps what was learned;
  ``--fit FILE.json`` reuses it without the training data.
- ``--oracle``: label each region with the majority class of INPUT's own true masks: an upper bound on
  what the partition allows, not a result. INPUT must then be a dataset folder.
- neither: write the regions themselves, as int32 TIFF label images (``<name>.tif``), because region
  labels are not classes and can exceed the 256 values of a palette PNG.

The work is a ``jobs.Job``, as ``predict``'s: files of other runs in ``--out`` are replaced only with
``--overwrite``, a rerun of the same command finishes what is missing, a damaged image is said and the
others go on; ``--out`` may never be a folder the inputs are read from (a dataset's own folders, ``--fit``'s
too), nor replace an input file, whatever the flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pixelwise.classical.registry import list_methods, method_options
from pixelwise.cli.app import Section, app, command_class, parse_key_values
from pixelwise.cli.options import (
    cluster_option,
    coco_option,
    executor_for,
    instance_sink,
    instances_option,
    min_size_option,
    no_split_option,
    objects_line,
    out_option,
    overwrite_option,
    quiet_option,
    set_threads,
    settings_option,
    threads_option,
    workers_option,
)
from pixelwise.data.splits import ALL, dataset_folders, is_dataset_folder, resolve_split
from pixelwise.errors import PixelwiseError
from pixelwise.jobs import Item

if TYPE_CHECKING:
    from pixelwise.data.sources import ImageSource
    from pixelwise.jobs import Task


def method_sections() -> list[Section]:
    """The help's list of methods with their ``--set`` options and defaults."""
    rows = []
    for name in list_methods():
        options = method_options(name)
        shown = ", ".join(f"{key}={_shown(value)}" for key, value in options.items())
        rows.append((name, shown or "(no options)"))
    return [("Methods and their --set options (defaults)", rows)]


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


@app.command(
    cls=command_class(method_sections),
    epilog="""Examples:

\b
  pixelwise classical otsu nuclei -o out/otsu --fit nuclei
  pixelwise classical kmeans photo.png -o out/ --set clusters=5
  pixelwise classical slic data/cells -o out/slic-oracle --oracle
  pixelwise classical otsu nuclei -o out/otsu --fit nuclei --instances
  pixelwise classical otsu scans/ -o out/otsu --fit nuclei --workers 4""",
)
def classical(
    method: str = typer.Argument(..., metavar="METHOD", help="A method (listed below)."),
    input_path: str = typer.Argument(
        ...,
        metavar="INPUT",
        help="An image, a folder of images, a dataset folder or a built-in dataset name (a dataset: every image, "
        "or its test/ folder when it has train/ val/ test/ folders; --split chooses another).",
    ),
    out: Path = out_option("Folder for the masks, one file per image, named by its path within INPUT."),
    fit: str | None = typer.Option(
        None,
        "--fit",
        metavar="TRAIN_DATA",
        help="Learn region -> class on this dataset's train split (folder or built-in name), or reuse a --save-fit JSON.",
    ),
    save_fit: Path | None = typer.Option(None, "--save-fit", metavar="FILE", help="Keep the --fit result as JSON."),
    oracle: bool = typer.Option(
        False, "--oracle", help="Label regions with INPUT's true masks: an upper bound, never a result."
    ),
    settings: list[str] = settings_option("A method option, e.g. classes=4 (each method's are listed below)."),
    split: str | None = typer.Option(
        None,
        metavar="train|val|test|all",
        help="Segment only this split of a dataset INPUT. Default: test of a folder with train/ val/ test/ "
        "folders, every image of any other (a --split of a flat folder is the seeded 70/15/15 split that --fit "
        "trains on).",
    ),
    instances: bool = instances_option(),
    no_split: bool = no_split_option(),
    min_size: int | None = min_size_option(),
    coco: bool = coco_option(),
    threads: int | None = threads_option("Threads of the numeric libraries (OpenMP, BLAS)."),
    quiet: bool = quiet_option(),
    overwrite: bool = overwrite_option("Write into a non-empty --out (and replace a --save-fit file); inputs never."),
    cluster: str | None = cluster_option(),
    workers: int | None = workers_option(),
) -> None:
    """Segment images with a classical method (no network).

    Thresholds, edges, region growing, clustering. Without --fit or --oracle the regions themselves are
    written (int32 TIFF): a partition, not classes.
    """
    from pixelwise.classical import ClassicalSegmenter, check_options
    from pixelwise.files import check_apart
    from pixelwise.jobs import Job, check_job, run_job
    from pixelwise.sinks import make_sink

    out_dir = out
    set_threads(threads, torch=False)

    options = parse_key_values(settings, "--set")
    check_options(method, options)
    if fit is not None and oracle:
        raise PixelwiseError("--fit and --oracle exclude each other: --fit is the honest labeler, --oracle the bound")
    if save_fit is not None and (fit is None or fit.endswith(".json")):
        raise PixelwiseError("--save-fit needs --fit TRAIN_DATA (a dataset to learn from)")

    if cluster is not None or workers is not None:  # the workers write and read from other folders
        out_dir = out_dir.absolute()
        input_path = str(Path(input_path).absolute()) if Path(input_path).exists() else input_path
    inputs = _inputs(input_path, split)
    if oracle and inputs.dataset is None:
        raise PixelwiseError(
            f"--oracle needs the true masks: {input_path} has none; give a dataset folder (images/ + masks/)"
        )
    regions = fit is None and not oracle
    if regions and instances:
        raise PixelwiseError(
            "--instances finds the objects of classes, and regions are no classes: add --fit TRAIN_DATA (or --oracle)"
        )
    objects = instance_sink(
        instances=instances,
        no_split=no_split,
        min_size=min_size,
        coco=coco,
        out=out_dir,
        items=inputs.items,
        probabilities=False,
    )
    identity: dict[str, Any] = {"command": "classical", "method": method, "options": options, "fit": fit}
    identity["oracle"] = oracle
    if objects is not None:
        identity["instances"] = objects.settings()
    read = dataset_folders(inputs.dataset.root) if inputs.dataset is not None else [Path(input_path)]
    job = Job(
        inputs.items,
        out_dir,
        # the objects first: their commit does the most work, and a failure there leaves no file of the image
        [*([objects] if objects is not None else []), make_sink("regions" if regions else "mask")],
        classes=None,
        settings=identity,
        overwrite=overwrite,
        input_folders=[*read, *_fit_folders(fit)],
        input_files=[item.path for item in inputs.items],
    )
    check_job(job)
    if save_fit is not None:
        check_apart(save_fit.parent, targets=[save_fit], flag="--save-fit", input_files=job.input_files)
        if save_fit.exists() and not overwrite:
            raise PixelwiseError(
                f"{save_fit}: exists already; add --overwrite to replace it, or give another --save-fit"
            )
    chosen = inputs.split
    if (
        fit is not None
        and inputs.dataset is not None
        and chosen in ("train", ALL)
        and _same_dataset(fit, inputs.dataset.root)
    ):
        segmented = f"every image of {input_path}" if chosen == ALL else f"the train split of {input_path}"
        print(f"pixelwise: warning: {segmented} includes the fit's training images", file=sys.stderr)

    # connected before the fit: a scheduler that cannot be reached is said at once
    with executor_for(cluster, workers, threads=threads, quiet=quiet) as executor:
        if fit is not None:
            segmenter = _fitted(method, options, fit, settings)
            if save_fit is not None:
                segmenter.save(save_fit)
            what = f"classes learned on {fit}"
        elif oracle:
            segmenter = ClassicalSegmenter(method, options, labeler="oracle", classes=inputs.dataset.classes)
            what = "ORACLE classes (the majority of the true mask in each region: an upper bound, not a result)"
        else:
            segmenter = ClassicalSegmenter(method, options)
            what = "region labels, not classes (int32 TIFF; give --fit DATA or --oracle for class masks)"
        job = replace(job, classes=None if regions else segmenter.classes)
        report = run_job(
            job,
            _segmentation_task(segmenter, inputs, regions=regions),
            desc=segmenter.name,
            quiet=quiet,
            open_source=inputs.open,
            executor=executor,
        )
    written = len(report.written)
    complete = f"; {len(report.complete)} were complete from an earlier run" if report.complete else ""
    print(f"wrote {written} {'mask' if written == 1 else 'masks'} of {segmenter.name} to {out_dir}: {what}{complete}")
    if objects is not None:
        print(objects_line(objects, out_dir))
    if report.failed:
        raise report.failure(len(inputs.items))


@dataclass(frozen=True)
class _Inputs:
    """What ``classical`` segments: the items, the dataset they come from (None for plain images), the split
    segmented (``data.splits.resolve_split``; None for plain images), and the truth of each by name."""

    items: list[Item]
    dataset: Any
    split: str | None
    truths: dict[str, Callable[[], Any]]

    def open(self, item: Item) -> ImageSource:
        """A dataset's image as the dataset reads it (its channels conformed); a plain file as any image."""
        from pixelwise.data.sources import ArraySource, open_image

        if self.dataset is None:
            return open_image(item.path)
        sample = self.dataset[self.dataset.stems.index(item.name)]
        self.truths[item.name] = lambda: sample.mask
        return ArraySource(sample.image, name=str(item.path))


def _segmentation_task(segmenter: Any, inputs: _Inputs, *, regions: bool) -> Task:
    """The whole image segmented at once: one band."""
    from pixelwise.sinks import PredictionBand

    def task(
        item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
    ) -> Iterator[PredictionBand]:
        image = source.read(0, 0, source.info.height, source.info.width)
        if regions:
            labels = segmenter.regions(image)
        else:
            truth = inputs.truths.pop(item.name)() if segmenter.labeler_kind == "oracle" else None
            labels = segmenter.predict(image, truth=truth)
        progress(1)
        yield PredictionBand(0, labels)

    return task


def _inputs(input_path: str, split: str | None) -> _Inputs:
    """The images of INPUT: one file, a folder of images, or a split of a dataset (folder or built-in)."""
    from pixelwise.jobs import collect_items

    path = Path(input_path)
    # a pipe, a device or a broken link too: collect_items says what it is (never "no such dataset")
    if (path.is_dir() and not is_dataset_folder(path)) or (not path.is_dir() and (path.exists() or path.is_symlink())):
        return _Inputs(collect_items([path]), None, None, {})

    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder

    if not path.exists() and ("/" in input_path or Path(input_path).suffix):
        raise PixelwiseError(f"{input_path}: no such file or folder; give an image, a folder or a dataset")
    root = dataset_root(input_path)
    chosen = resolve_split(root, split)
    dataset = SegmentationFolder(root, chosen)
    if len(dataset) == 0:
        raise PixelwiseError(f"{input_path}: the {chosen} split has no images; choose another --split")
    items = [Item(dataset.image_paths[index], stem) for index, stem in enumerate(dataset.stems)]
    return _Inputs(items, dataset, chosen, {})


def _fit_folders(fit: str | None) -> list[Path]:
    """The folders of the dataset ``--fit`` reads (inputs like INPUT's), if it names one."""
    if fit is None or fit.endswith(".json"):
        return []
    from pixelwise.data.datasets import dataset_root

    return dataset_folders(dataset_root(fit))


def _same_dataset(fit: str, root: Path) -> bool:
    fit_path = Path(fit)
    return fit_path.is_dir() and fit_path.resolve() == root.resolve()


def _fitted(method: str, options: dict[str, Any], fit: str, settings: list[str]) -> Any:
    from pixelwise.classical import ClassicalSegmenter
    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder

    if fit.endswith(".json"):
        segmenter = ClassicalSegmenter.load(fit)
        if segmenter.method != method:
            raise PixelwiseError(f"{fit} was fitted for {segmenter.method}, not {method}; fit {method} again")
        if settings and options != segmenter.options:
            raise PixelwiseError(
                f"{fit} was fitted with options {segmenter.options}; drop --set, or fit again with the new options"
            )
        return segmenter
    train = SegmentationFolder(dataset_root(fit), "train")
    return ClassicalSegmenter(method, options).fit(train)
