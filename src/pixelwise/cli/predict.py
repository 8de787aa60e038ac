"""`pixelwise predict MODEL INPUT... --out DIR`: label maps for images of any size with a trained model.

MODEL is a checkpoint of ``pixelwise train`` or an ``.onnx`` of ``pixelwise export``; with an ``.onnx`` nothing
here imports PyTorch.

Writes ``DIR/<stem>.png`` (palette masks, the format ``pixelwise evaluate`` reads), and on request
``DIR/overlays/<stem>.png`` (the image with the classes painted over it) and
``DIR/probabilities/<stem>.npy`` (float16 (K, H, W) class probabilities). Every file is written atomically;
existing files are only replaced with ``--overwrite``. Inputs are never written, whatever the flags: an
``--out`` that is an input folder, or an output named like an input image, is refused. One ``predict`` at a
time writes into a folder (``files.output_lock``).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import typer

from pixelwise.cli.app import app
from pixelwise.cli.options import (
    device_option,
    out_option,
    overwrite_option,
    quiet_option,
    set_threads,
    switch_option,
    threads_option,
)
from pixelwise.errors import PixelwiseError


def collect_images(inputs: list[Path]) -> list[Path]:
    """Image files from files and folders (a folder's images, sorted); stems must be unique."""
    from pixelwise.data.io import IMAGE_SUFFIXES, list_images

    images: list[Path] = []
    for entry in inputs:
        if entry.is_dir():
            images.extend(list_images(entry))
        elif entry.is_file():
            if entry.suffix.lower() not in IMAGE_SUFFIXES:
                raise PixelwiseError(
                    f"{entry}: not an image file; give images ({', '.join(sorted(IMAGE_SUFFIXES))}) or folders"
                )
            images.append(entry)
        else:
            raise PixelwiseError(f"{entry}: no such file or folder; give images or folders of images")
    if not images:
        raise PixelwiseError(f"no images in {', '.join(map(str, inputs))}; give images or folders of images")
    seen: dict[str, Path] = {}
    for image in images:
        if image.stem in seen:
            raise PixelwiseError(
                f"{seen[image.stem]} and {image} share the name {image.stem!r}, and masks are named by stem; "
                "rename one or predict them into different --out folders"
            )
        seen[image.stem] = image
    return images


BACKEND_HELP = (
    "auto: for a .pt on the CPU, ONNX Runtime when it is installed and the model exports (1.6-1.9x eager PyTorch "
    "on one thread: bench/backends.py; exported once, checked, cached), else PyTorch; an .onnx always runs in "
    "ONNX Runtime. torch, onnx: that runtime."
)
PRECISION_HELP = (
    "auto: fp16 on CUDA, fp32 on the CPU. bf16 runs on CPUs with bf16 hardware (avx512_bf16/amx_bf16), fp16 on "
    "CUDA; asked for elsewhere, a note says so and fp32 runs."
)


@app.command(
    epilog="""Examples:

\b
  pixelwise predict runs/cells/best.pt slide.tif -o masks/ --overlay
  pixelwise predict model.onnx images/ -o masks/ --threads 4
  pixelwise predict runs/cells images/ -o masks/ --tta --device cuda"""
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
        False, "--save-probs", help="Also write probabilities/<stem>.npy, float16 (K, H, W)."
    ),
    backend: str = typer.Option(
        "auto", "--backend", metavar="auto|torch|onnx", help=BACKEND_HELP, case_sensitive=False
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
    from pixelwise.files import check_apart, output_lock
    from pixelwise.inference.predictor import Predictor

    if out.exists() and not out.is_dir():
        raise PixelwiseError(f"{out}: exists and is not a folder; give a folder for --out")
    images = collect_images(inputs)
    targets = {image: out / f"{image.stem}.png" for image in images}
    outputs = [path for image in images for path in _outputs(out, image, save_overlay, save_probabilities)]
    check_apart(out, input_folders=inputs, input_files=images, targets=outputs, flag="--out")
    with output_lock(out):
        existing = [path for path in outputs if path.exists()]
        if existing and not overwrite:
            shown = ", ".join(str(path) for path in existing[:3]) + (" ..." if len(existing) > 3 else "")
            raise PixelwiseError(
                f"{len(existing)} output files exist already ({shown}); add --overwrite or pick another --out"
            )
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
        _predict_all(
            predictor,
            images,
            targets,
            out,
            save_overlay=save_overlay,
            save_probabilities=save_probabilities,
            quiet=quiet,
        )
    runtime = getattr(predictor.backend, "description", type(predictor.backend).__name__)
    print(f"wrote {len(images)} {'mask' if len(images) == 1 else 'masks'} to {out} ({runtime})")


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


def _predict_all(
    predictor: Any,
    images: list[Path],
    targets: dict[Path, Path],
    out: Path,
    *,
    save_overlay: bool,
    save_probabilities: bool,
    quiet: bool,
) -> None:
    """Every image through ``predictor``: its mask, and its probabilities and overlay when asked."""
    from PIL import Image

    from pixelwise.data.io import image_size, overlay, read_image, write_mask
    from pixelwise.files import atomic_path
    from pixelwise.inference.tiling import tile_grid
    from pixelwise.progress import progress_bar
    from pixelwise.report.legend import with_legend

    sizes = {image: image_size(image) for image in images}
    total = sum(len(tile_grid(*sizes[image], predictor.tile_size, predictor.overlap)) for image in images)
    with progress_bar(total=total, desc="predict", unit="tile", quiet=quiet) as bar:
        for image_path in images:
            bar.set_postfix_str(image_path.name)
            image = read_image(image_path)

            def image_note(message: str, name: str = image_path.name) -> None:
                if not quiet:
                    bar.write(f"note: {name}: {message}", file=sys.stderr)

            # channel conversions and the like: a plain note per image, not a Python warning with a traceback line
            with _notes(image_note):
                if save_probabilities:
                    probabilities = predictor.predict(image, progress=bar.update)
                    labels = probabilities.argmax(axis=0).astype(np.uint8)
                    with atomic_path(out / "probabilities" / f"{image_path.stem}.npy") as tmp:
                        np.save(tmp, probabilities.astype(np.float16))
                    del probabilities
                else:
                    labels = predictor.predict_labels(image, progress=bar.update)
            write_mask(targets[image_path], labels, predictor.classes)
            if save_overlay:
                with atomic_path(out / "overlays" / f"{image_path.stem}.png") as tmp:
                    picture = with_legend(overlay(image, labels, predictor.classes), labels, predictor.classes)
                    Image.fromarray(picture).save(tmp, format="PNG")


def _outputs(out: Path, image: Path, save_overlay: bool, save_probabilities: bool) -> list[Path]:
    paths = [out / f"{image.stem}.png"]
    if save_overlay:
        paths.append(out / "overlays" / f"{image.stem}.png")
    if save_probabilities:
        paths.append(out / "probabilities" / f"{image.stem}.npy")
    return paths
