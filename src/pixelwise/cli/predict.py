"""`pixelwise predict MODEL INPUT... --out DIR`: label maps for images of any size with a trained model.

MODEL is a checkpoint of ``pixelwise train`` or an ``.onnx`` of ``pixelwise export``; with an ``.onnx`` nothing
here imports PyTorch.

Writes ``DIR/<name>.png`` (palette masks, the format ``pixelwise evaluate`` reads; ``DIR/<name>.tif``, a
GeoTIFF with the input's CRS and transform, for every image when an input is georeferenced), and on request
``DIR/overlays/<name>.png`` (the image with the classes painted over it),
``DIR/probabilities/<name>.npy`` (float16 (K, H, W) class probabilities) and, with ``--instances``, the
objects in ``DIR/instances/`` (``sinks.objects``); ``<name>`` is an image's path
within the folder given (``batch2/a``), or its stem. Slides, tiled and pyramidal TIFFs and images over
100 megapixels get ``DIR/<name>.tif`` instead, a tiled pyramidal TIFF mask, and ``.ome.zarr`` probabilities
(``inference.file_prediction``: the format per image, the pyramid level, the background skipped, resuming);
a georeferenced input keeps the GeoTIFF, tiled and written band by band whatever its size. With
``--cluster`` / ``--workers`` whole images are the workers' tasks: an image that gets a tiled pyramidal TIFF,
or ``--level`` / ``--mpp`` / ``--foreground-mask``, is refused there (its bands are not split over workers).
The work is a ``jobs.Job`` (one loop with ``classical``): every file written atomically; a bad image said in one line while the others go on; a
rerun of the same command finishes what is missing; files of other runs replaced only with
``--overwrite``; inputs never written, whatever the flags. One ``predict`` at a time writes into a folder.

Images are read as the model's training images were (``data.bands``): its band selection (``--bands``
overrides it), its no-data value (``--nodata`` overrides it, and the file's own applies when neither is
given) and its band ranges; no-data pixels get the ignore label in the mask (GeoTIFF: the no-data value).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from pixelwise.cli.app import app
from pixelwise.cli.options import (
    cluster_option,
    coco_option,
    device_option,
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
    switch_option,
    threads_option,
    workers_option,
)
from pixelwise.errors import PixelwiseError
from pixelwise.inference.backends import BACKENDS, runtime_help

if TYPE_CHECKING:
    from pixelwise.data.bands import Band
    from pixelwise.data.sources import ImageSource
    from pixelwise.inference.file_prediction import OutputOptions, RunStats
    from pixelwise.inference.spec import InferenceSpec
    from pixelwise.jobs import Item, JobReport
    from pixelwise.sinks import MaskSink, PredictionBand


PRECISION_HELP = (
    "auto: fp16 on CUDA, fp32 on the CPU. bf16 runs on CPUs with bf16 hardware (avx512_bf16/amx_bf16), fp16 on "
    "CUDA; asked for elsewhere, a note says so and fp32 runs."
)


@app.command(
    epilog="""Examples:

\b
  pixelwise predict runs/cells/best.pt slide.tif -o masks/ --overlay
  pixelwise predict model.onnx images/ -o masks/ --threads 4
  pixelwise predict runs/cells images/ -o masks/ --tta --device cuda
  pixelwise predict runs/cells slides/ -o out/cells --instances
  pixelwise predict model.onnx scans/ -o masks/ --cluster tcp://head:8786
  pixelwise predict runs/s2 scenes/ -o masks/ --nodata 0
  pixelwise predict runs/tissue slide.svs -o masks/ --mpp 1  # a tiled TIFF"""
)
def predict(
    model: Path = typer.Argument(
        ...,
        metavar="MODEL",
        help="An .onnx from 'pixelwise export', or a best.pt / last.pt from 'pixelwise train' or its run folder.",
    ),
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Images and/or folders of images."),
    out: Path = out_option("Folder for the masks (<stem>.png)."),
    tile: int | None = typer.Option(
        None, "--tile", metavar="N", help="Tile size in pixels.  [default: the training tile size]"
    ),
    overlap: float = typer.Option(0.5, metavar="F", help="Fraction of a tile shared with its neighbours, in [0, 1)."),
    batch_size: int = typer.Option(4, "--batch-size", metavar="N", help="Tiles per forward pass."),
    tta: bool = switch_option("tta", False, "Average over flipped copies (4× slower, often a little better)."),
    save_overlay: bool = typer.Option(
        False, "--overlay", help="Also write overlays/<stem>.png: the classes over the image, with a legend."
    ),
    save_probabilities: bool = typer.Option(
        False,
        "--save-probs",
        help="Also write probabilities/<stem>.npy, float16 (K, H, W); beside a TIFF mask <stem>.ome.zarr (OME-Zarr).",
    ),
    mask_format: str = typer.Option(
        "auto",
        "--mask-format",
        metavar="auto|png|tiff",
        help="png: palette PNG; tiff: tiled pyramidal TIFF (QuPath, OpenSlide, tifffile read it). auto: tiff for "
        "slides, tiled or pyramidal TIFFs and images over 100 megapixels, else png.",
        case_sensitive=False,
    ),
    level: int | None = typer.Option(
        None,
        "--level",
        metavar="N",
        help="Predict on pyramid level N of a slide or pyramidal TIFF (0: full resolution).",
    ),
    mpp: float | None = typer.Option(
        None,
        "--mpp",
        metavar="X",
        help="Predict on the pyramid level nearest X microns per pixel.  [default: the model's, where it says]",
    ),
    foreground: bool | None = typer.Option(
        None,
        "--foreground-mask/--no-foreground-mask",
        help="Skip tiles of empty background (Otsu on a low level; their pixels get class 0).  [default: on for "
        "slides and microscope pyramids, off otherwise]",
        show_default=False,
    ),
    instances: bool = instances_option(),
    no_split: bool = no_split_option(),
    min_size: int | None = min_size_option(),
    coco: bool = coco_option(),
    backend: str = typer.Option(
        "auto", "--backend", metavar="|".join(BACKENDS), help=runtime_help(), case_sensitive=False
    ),
    device: str = device_option(),
    precision: str = typer.Option(
        "auto", "--precision", metavar="auto|fp32|fp16|bf16", help=PRECISION_HELP, case_sensitive=False
    ),
    bands: str | None = typer.Option(
        None,
        "--bands",
        metavar="4,3,2",
        help="The bands the model reads, 1-based or by name, in its order.  [default: the training's]",
    ),
    nodata: float | None = typer.Option(
        None,
        "--nodata",
        metavar="V",
        help="The stored value of pixels without data: ignore label in the mask.  [default: the training's, "
        "else each file's]",
    ),
    threads: int | None = threads_option("CPU threads of the runtime (torch or ONNX Runtime)."),
    quiet: bool = quiet_option("No progress output (off a terminal: a line every few seconds), no notes."),
    overwrite: bool = overwrite_option(),
    cluster: str | None = cluster_option(),
    workers: int | None = workers_option(),
) -> None:
    """Label masks for images of any size with a trained model.

    Tiled, the tiles blended with Gaussian weights; <stem>.png in --out for every image.
    """
    from pixelwise.data.bands import parse_bands
    from pixelwise.inference import file_prediction as files
    from pixelwise.inference.predictor import Predictor
    from pixelwise.jobs import Job, check_job, collect_items, run_job

    if cluster is not None or workers is not None:  # the workers write and read from other folders
        out, inputs = out.absolute(), [path.absolute() for path in inputs]
    items = collect_items(inputs)
    chosen = parse_bands(bands) if bands is not None else ()
    options = files.OutputOptions(
        mask_format.lower(), save_probabilities, save_overlay, level=level, mpp=mpp, foreground=foreground
    )
    formats = files.mask_formats(items, options)  # from the headers, before any work
    if cluster is not None or workers is not None:
        _check_cluster(formats, options)
    # the network's probabilities part touching objects better (docs/results.md: PQ +0.06-0.08)
    objects = instance_sink(
        instances=instances, no_split=no_split, min_size=min_size, coco=coco, out=out, items=items, probabilities=True
    )
    settings = {
        "command": "predict",
        "model": files.file_identity(model),
        "tile": tile,
        "overlap": overlap,
        "tta": tta,
        "precision": precision.lower(),
        "reading": {"level": level, "mpp": mpp, "foreground": foreground},
        **({"bands": list(chosen)} if chosen else {}),
        **({"nodata": nodata} if nodata is not None else {}),
    }
    if objects is not None:
        settings["instances"] = objects.settings()
    names = ["mask", *(["overlay"] if save_overlay else []), *(["probabilities"] if save_probabilities else [])]
    # the objects first: their commit does the most work, and a failure there leaves no file of the image
    sinks: list[MaskSink] = [objects] if objects is not None else []
    sinks += files.prediction_sinks(
        formats, options, key=files.job_key({**settings, "outputs": names}), resume=not overwrite
    )
    job = Job(
        items,
        out,
        sinks,
        classes=None,
        settings=settings,
        overwrite=overwrite,
        input_folders=[path for path in inputs if path.is_dir()],
        input_files=[item.path for item in items],
    )
    check_job(job)  # before loading the model: a refused --out costs nothing
    load: dict[str, Any] = {  # Predictor.load's, here and on a cluster's workers
        "tile_size": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "tta": tta,
        "backend": backend.lower(),
        "device": device,
        "precision": precision.lower(),
    }
    stats = files.RunStats()
    with executor_for(cluster, workers, threads=threads, quiet=quiet) as executor:
        # an .onnx runs without PyTorch: only a checkpoint's torch gets the thread count
        set_threads(threads, torch=model.suffix.lower() != ".onnx" and _has_torch())
        with _notes(lambda message: None if quiet else print(f"note: {message}", file=sys.stderr)):
            predictor = Predictor.load(model, **load, threads=threads)
        job = replace(job, classes=predictor.classes)
        opener = files.level_opener(options, predictor.spec.mpp, _opener(predictor.spec, bands=chosen, nodata=nodata))
        # in this process the bands of an image stream from the row its files resume at, skipping background;
        # a worker runs whole images (the refusals above keep the rest here)
        task = (
            files.prediction_task(predictor, options, sinks, out, stats)
            if executor is None
            else PredictionTask(model, load, predictor)
        )
        report = run_job(
            job,
            task,
            units=files.tiles_at_level(predictor, options, opener),
            desc="predict",
            unit="tile",
            quiet=quiet,
            executor=executor,
            open_source=opener,
        )
    runtime = getattr(predictor.backend, "description", type(predictor.backend).__name__)
    print(_summary(report, out, runtime, stats))
    if objects is not None:
        print(objects_line(objects, out))
    if report.failed:
        raise report.failure(len(items))


class PredictionTask:
    """The predictor's bands as the job's (a ``jobs.Task``): labels, with the probabilities when a sink wants
    them.

    It travels to a cluster's workers as what loads the model (``model``, ``options`` of ``Predictor.load``),
    not as the loaded model: each worker loads its own, once (``prepare``).
    """

    def __init__(self, model: Path, options: dict[str, Any], predictor: Any) -> None:
        self.model = model.absolute()
        self.options = options
        self.predictor = predictor

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "options": self.options, "predictor": None}

    def prepare(self, *, threads: int) -> None:
        """Load the model here (a worker) with ``threads`` runtime threads."""
        from pixelwise.inference.predictor import Predictor

        set_threads(threads, torch=self.model.suffix.lower() != ".onnx" and _has_torch())
        self.predictor = Predictor.load(self.model, **self.options, threads=threads)

    def __call__(
        self, item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
    ) -> Iterator[PredictionBand]:
        from pixelwise.sinks import PredictionBand

        if not probabilities:
            for band in self.predictor.stream(source, output="labels", progress=progress):
                yield PredictionBand(band.top, self._without_data(source, band.top, band.values))
            return
        for band in self.predictor.stream(source, output="probabilities", progress=progress):
            labels = self._without_data(source, band.top, band.values.argmax(axis=0).astype(np.uint8))
            yield PredictionBand(band.top, labels, probabilities=band.values)

    def _without_data(self, source: ImageSource, top: int, labels: np.ndarray) -> np.ndarray:
        from pixelwise.inference.file_prediction import without_data

        return without_data(source, top, labels, self.predictor.classes.ignore_index)


def _check_cluster(formats: dict[str, str], options: OutputOptions) -> None:
    """``--cluster`` / ``--workers`` run whole images as the workers' tasks: what reads or writes an image in
    bands here (a tiled pyramidal TIFF, a pyramid level, the background skip) is refused in one line."""
    tiled = [name for name, chosen in formats.items() if chosen == "tiff"]
    asked = [
        flag
        for flag, given in (
            ("--level", options.level is not None),
            ("--mpp", options.mpp is not None),
            ("--foreground-mask", bool(options.foreground)),
        )
        if given
    ]
    if tiled or asked:
        what = f"{', '.join(asked)}" if asked else f"{tiled[0]} gets a tiled pyramidal TIFF mask"
        raise PixelwiseError(
            f"--cluster / --workers run whole images on workers, and {what} (streamed in bands in this process): "
            "run those images without --cluster or --workers"
        )


def _opener(spec: InferenceSpec, *, bands: tuple[Band, ...], nodata: float | None) -> Callable[[Item], ImageSource]:
    """How an input is opened for the model: by the model's band rule (``--bands``/``--nodata`` over it) where
    it has one or the file is a raster, else as any image; an image of other bands fails alone, in one line."""
    from dataclasses import replace as replaced

    from pixelwise.data.bands import InputBands
    from pixelwise.data.channels import check_channels
    from pixelwise.data.raster_files import is_raster
    from pixelwise.data.rasters import open_raster
    from pixelwise.data.sources import open_image

    rule = spec.input_bands
    if bands:
        rule = replaced(rule or InputBands(), selection=bands)

    def open_source(item: Item) -> ImageSource:
        if rule is None and nodata is None and not is_raster(item.path):
            return open_image(item.path)
        source = open_raster(item.path, input_bands=rule, nodata=nodata)
        try:
            check_channels(source.info.bands, spec.in_channels, str(item.path), expected="the model was trained on")
        except BaseException:
            source.close()
            raise
        return source

    return open_source


def _summary(report: JobReport, out: Path, runtime: str, stats: RunStats) -> str:
    """``wrote 12 masks to out/ (torch, cpu, fp32); 3 were complete from an earlier run``, with the background
    tiles skipped and the images resumed."""

    def masks(count: int) -> str:
        return f"{count} {'mask' if count == 1 else 'masks'}"

    if not report.written and not report.failed:
        return (
            f"all {masks(len(report.complete))} in {out} are complete from an earlier run of this command; nothing "
            "to do (--overwrite does them again)"
        )
    complete = f"; {len(report.complete)} were complete from an earlier run" if report.complete else ""
    skipped = f"; {stats.skipped:,} of {stats.tiles:,} tiles skipped as background" if stats.skipped else ""
    resumed = f"; {len(stats.resumed)} resumed where an earlier run stopped" if stats.resumed else ""
    return f"wrote {masks(len(report.written))} to {out} ({runtime}){complete}{skipped}{resumed}"


def _has_torch() -> bool:
    """Whether PyTorch can be imported (without importing it): a checkpoint without it is one line later."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _notes(say: Callable[[str], Any]) -> Iterator[None]:
    """Python warnings raised inside become one plain line each (``say``), as they come, once per message."""
    seen: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        if str(message) not in seen:
            seen.add(str(message))
            say(str(message))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
