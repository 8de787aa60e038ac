"""`pixelwise classical METHOD INPUT OUT_DIR`: segment images with a classical method, no network.

A classical method partitions an image into regions; it does not know which region is which class. So:

- ``--fit TRAIN_DATA``: learn region -> class on TRAIN_DATA's train split (a dataset folder or a built-in
  name), then write class masks (palette PNG). ``--save-fit FILE.json`` keeps what was learned;
  ``--fit FILE.json`` reuses it without the training data.
- ``--oracle``: label each region with the majority class of INPUT's own true masks: an upper bound on
  what the partition allows, not a result. INPUT must then be a dataset folder.
- neither: write the regions themselves, as int32 TIFF label images (``<stem>.tif``), because region
  labels are not classes and can exceed the 256 values of a palette PNG.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from pixelwise.classical.registry import list_methods
from pixelwise.cli.app import app, parse_key_values
from pixelwise.data.splits import ALL, is_dataset_folder, resolve_split
from pixelwise.errors import PixelwiseError


@app.command()
def classical(
    method: str = typer.Argument(..., metavar="METHOD", help=f"One of: {', '.join(list_methods())}."),
    input_path: str = typer.Argument(
        ...,
        metavar="INPUT",
        help="An image, a folder of images, a dataset folder or a built-in dataset name (a dataset: every image, "
        "or its test/ folder when it has train/ val/ test/ folders; --split chooses another).",
    ),
    out_dir: Path = typer.Argument(
        ..., metavar="OUT_DIR", help="Where the masks go, one file per image, named by its stem."
    ),
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
    settings: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="A method option, e.g. classes=4."),
    split: str | None = typer.Option(
        None,
        help="Segment only this split of a dataset INPUT: train, val, test or all. Default: test of a folder "
        "with train/ val/ test/ folders, every image of any other (a --split of a flat folder is the seeded "
        "70/15/15 split that --fit trains on).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Segment images with a classical method (thresholds, edges, region growing, clustering).

    Without --fit or --oracle the regions themselves are written (int32 TIFF): a partition, not classes.
    A wrong --set key lists the method's options.
    """
    from tqdm import tqdm

    from pixelwise.classical import ClassicalSegmenter, check_options

    options = parse_key_values(settings, "--set")
    check_options(method, options)
    if fit is not None and oracle:
        raise PixelwiseError("--fit and --oracle exclude each other: --fit is the honest labeler, --oracle the bound")
    if save_fit is not None and (fit is None or fit.endswith(".json")):
        raise PixelwiseError("--save-fit needs --fit TRAIN_DATA (a dataset to learn from)")
    if out_dir.exists() and not out_dir.is_dir():
        raise PixelwiseError(f"{out_dir} is a file; give a folder for the masks")

    items, dataset, split = _inputs(input_path, split)
    if oracle and dataset is None:
        raise PixelwiseError(
            f"--oracle needs the true masks: {input_path} has none; give a dataset folder (images/ + masks/)"
        )

    if fit is not None:
        segmenter = _fitted(method, options, fit, settings)
        if save_fit is not None:
            segmenter.save(save_fit)
        if dataset is not None and split in ("train", ALL) and _same_dataset(fit, dataset.root):
            segmented = f"every image of {input_path}" if split == ALL else f"the train split of {input_path}"
            print(f"pixelwise: warning: {segmented} includes the fit's training images", file=sys.stderr)
        what = f"classes learned on {fit}"
    elif oracle:
        assert dataset is not None
        segmenter = ClassicalSegmenter(method, options, labeler="oracle", classes=dataset.classes)
        what = "ORACLE classes (the majority of the true mask in each region: an upper bound, not a result)"
    else:
        segmenter = ClassicalSegmenter(method, options)
        what = "region labels, not classes (int32 TIFF; give --fit DATA or --oracle for class masks)"

    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    # the bar shows after half a second, so an error on the first image (a bad --set value) stays one line
    progress = tqdm(items, desc=segmenter.name, unit="image", disable=quiet, file=sys.stderr, delay=0.5)
    for stem, path, load in progress:
        image, truth = load()
        try:
            if fit is None and not oracle:
                _write_regions(out_dir / f"{stem}.tif", segmenter.regions(image))
            else:
                labels = segmenter.predict(image, truth=truth if oracle else None)
                _write_classes(out_dir / f"{stem}.png", labels, segmenter.classes)
        except PixelwiseError as error:
            raise PixelwiseError(f"{path}: {error}") from None
        written += 1
    print(f"wrote {written} {'mask' if written == 1 else 'masks'} of {segmenter.name} to {out_dir}: {what}")


def _inputs(input_path: str, split: str | None) -> tuple[list[tuple[str, Path, Any]], Any, str | None]:
    """[(stem, path, load() -> (image, truth or None))], the SegmentationFolder (None for plain images) and
    the split segmented (``data.splits.resolve_split``; None for plain images)."""
    from pixelwise.data.io import list_images, read_image

    path = Path(input_path)
    if path.is_file():
        return [(path.stem, path, lambda: (read_image(path), None))], None, None
    if path.is_dir() and not is_dataset_folder(path):
        images = list_images(path)
        if not images:
            raise PixelwiseError(f"{path}: no images in this folder; give a folder of images or a dataset folder")
        return [(image.stem, image, _reader(image)) for image in images], None, None

    from pixelwise.data.builtin import dataset_root
    from pixelwise.data.folder import SegmentationFolder

    if not path.exists() and ("/" in input_path or Path(input_path).suffix):
        raise PixelwiseError(f"{input_path}: no such file or folder; give an image, a folder or a dataset")
    root = dataset_root(input_path)
    chosen = resolve_split(root, split)
    dataset = SegmentationFolder(root, chosen)
    if len(dataset) == 0:
        raise PixelwiseError(f"{input_path}: the {chosen} split has no images; choose another --split")

    def sample(index: int) -> Any:
        def load() -> tuple[Any, Any]:
            item = dataset[index]  # reads the image and the mask once
            return item.image, item.mask

        return load

    items = [(stem, dataset.image_paths[index], sample(index)) for index, stem in enumerate(dataset.stems)]
    return items, dataset, chosen


def _reader(path: Path) -> Any:
    from pixelwise.data.io import read_image

    return lambda: (read_image(path), None)


def _same_dataset(fit: str, root: Path) -> bool:
    fit_path = Path(fit)
    return fit_path.is_dir() and fit_path.resolve() == root.resolve()


def _fitted(method: str, options: dict[str, Any], fit: str, settings: list[str]) -> Any:
    from pixelwise.classical import ClassicalSegmenter
    from pixelwise.data.builtin import dataset_root
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


def _write_classes(path: Path, labels: Any, classes: Any) -> None:
    from pixelwise.data.io import write_mask

    write_mask(path, labels, classes)


def _write_regions(path: Path, regions: Any) -> None:
    import tifffile

    from pixelwise.files import atomic_path

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, regions, compression="zlib")
