"""`pixelwise predict MODEL INPUT... --out DIR`: label maps for images of any size with a trained model.

MODEL is a checkpoint of ``pixelwise train`` or an ``.onnx`` of ``pixelwise export``; with an ``.onnx`` nothing
here imports PyTorch.

Writes ``DIR/<name>.png`` (palette masks, the format ``pixelwise evaluate`` reads), and on request
``DIR/overlays/<name>.png`` (the image with the classes painted over it),
``DIR/probabilities/<name>.npy`` (float16 (K, H, W) class probabilities) and, with ``--instances``, the
objects in ``DIR/instances/`` (``sinks.objects``); ``<name>`` is an image's path
within the folder given (``batch2/a``), or its stem. Slides, tiled and pyramidal TIFFs and images over
100 megapixels get ``DIR/<name>.tif`` instead, a tiled pyramidal TIFF mask, and ``.ome.zarr`` probabilities
(``inference.file_prediction``: the format per image, the pyramid level, the background skipped, resuming).
The work is a ``jobs.Job`` (one loop with
``classical``): every file written atomically; a bad image said in one line while the others go on; a
rerun of the same command finishes what is missing; files of other runs replaced only with
``--overwrite``; inputs never written, whatever the flags. One ``predict`` at a time writes into a folder.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pixelwise.cli.app import app
from pixelwise.cli.options import (
    coco_option,
    device_option,
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
)
from pixelwise.inference.backends import BACKENDS, runtime_help

if TYPE_CHECKING:
    from pixelwise.inference.file_prediction import RunStats
    from pixelwise.jobs import JobReport
    from pixelwise.sinks import MaskSink


PRECISION_HELP = (
    "auto: fp16 on CUDA, fp32 on the CPU. bf16 runs on CPUs with bf16 hardware (avx512_bf16/amx_bf16), fp16 on "
    "CUDA; asked for elsewhere, a note says so and fp32 runs."
)


@app.command(
    epilog="""Examples:

\b
  pixelwise predict runs/cells/best.pt photo.tif -o masks/ --overlay
  pixelwise predict model.onnx images/ -o masks/ --threads 4
  pixelwise predict runs/cells images/ -o masks/ --tta --device cuda
  pixelwise predict runs/cells slides/ -o out/cells --instances
  pixelwise predict runs/tissue/best.pt slide.svs -o masks/ --mpp 1   # -> masks/slide.tif, pyramidal"""
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
    threads: int | None = threads_option("CPU threads of the runtime (torch or ONNX Runtime)."),
    quiet: bool = quiet_option("No progress output (off a terminal: a line every few seconds), no notes."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Label masks for images of any size with a trained model.

    Tiled, the tiles blended with Gaussian weights; <stem>.png in --out for every image.
    """
    from pixelwise.inference import file_prediction as files
    from pixelwise.inference.predictor import Predictor
    from pixelwise.jobs import Job, check_job, collect_items, run_job

    items = collect_items(inputs)
    options = files.OutputOptions(
        mask_format.lower(), save_probabilities, save_overlay, level=level, mpp=mpp, foreground=foreground
    )
    formats = files.mask_formats(items, options)  # from the headers, before any work
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
    # an .onnx runs without PyTorch: only a checkpoint's torch gets the thread count
    set_threads(threads, torch=model.suffix.lower() != ".onnx" and _has_torch())
    with _notes(lambda message: None if quiet else print(f"note: {message}", file=sys.stderr)):
        predictor = Predictor.load(
            model,
            tile_size=tile,
            overlap=overlap,
            batch_size=batch_size,
            tta=tta,
            backend=backend.lower(),
            device=device,
            precision=precision.lower(),
            threads=threads,
        )
    job = replace(job, classes=predictor.classes)
    opener = files.level_opener(options, predictor.spec.mpp)
    stats = files.RunStats()
    report = run_job(
        job,
        files.prediction_task(predictor, options, sinks, out, stats),
        units=files.tiles_at_level(predictor, options, opener),
        desc="predict",
        unit="tile",
        quiet=quiet,
        open_source=opener,
    )
    runtime = getattr(predictor.backend, "description", type(predictor.backend).__name__)
    print(_summary(report, out, runtime, stats))
    if objects is not None:
        print(objects_line(objects, out))
    if report.failed:
        raise report.failure(len(items))


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
