"""`pixelwise predict MODEL INPUT... --out DIR`: label maps for images of any size with a trained model.

MODEL is a checkpoint of ``pixelwise train`` or an ``.onnx`` of ``pixelwise export``; with an ``.onnx`` nothing
here imports PyTorch.

Writes ``DIR/<stem>.png`` (palette masks, the format ``pixelwise evaluate`` reads), and on request
``DIR/overlays/<stem>.png`` (the image with the classes painted over it) and
``DIR/probabilities/<stem>.npy`` (float16 (K, H, W) class probabilities). Every file is written atomically;
existing files are only replaced with ``--overwrite``.
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
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

OVERLAY_OPACITY = 0.45


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


def overlay(image: np.ndarray, labels: np.ndarray, classes: ClassSpec) -> np.ndarray:
    """(H, W, 3) uint8: the image (grey or RGB, [0, 1]) with each pixel's class colour blended over it."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    colours = classes.colorize(labels).astype(np.float32) / 255
    blended = (1 - OVERLAY_OPACITY) * rgb + OVERLAY_OPACITY * colours
    return np.clip(np.rint(blended * 255), 0, 255).astype(np.uint8)


BACKEND_HELP = (
    "auto: for a .pt on the CPU, ONNX Runtime when it is installed and the model exports (1.6-1.9x eager PyTorch "
    "on one thread, more on several: bench/backends.py; exported once, checked, cached), else PyTorch; an .onnx "
    "always runs in ONNX Runtime. torch, onnx: that runtime."
)
PRECISION_HELP = (
    "auto: fp16 on CUDA, fp32 on the CPU. bf16 runs on CPUs with bf16 hardware (avx512_bf16/amx_bf16), fp16 on "
    "CUDA; asked for elsewhere, a note says so and fp32 runs."
)


@app.command()
def predict(
    model: Path = typer.Argument(
        ..., help="An .onnx from 'pixelwise export', or a best.pt / last.pt from 'pixelwise train' or its run folder."
    ),
    inputs: list[Path] = typer.Argument(..., help="Images and/or folders of images."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the masks (<stem>.png)."),
    tile: int | None = typer.Option(None, "--tile", help="Tile size in pixels; default: the training tile size."),
    overlap: float = typer.Option(0.5, help="Fraction of a tile shared with its neighbours, in [0, 1)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Tiles per forward pass."),
    tta: bool = typer.Option(
        False, "--tta/--no-tta", help="Average over flipped copies (4x slower, often a little better)."
    ),
    save_overlay: bool = typer.Option(False, "--overlay/--no-overlay", help="Also write overlays/<stem>.png."),
    save_probabilities: bool = typer.Option(
        False, "--save-probs/--no-save-probs", help="Also write probabilities/<stem>.npy, float16 (K, H, W)."
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP, case_sensitive=False),
    device: str = typer.Option(
        "auto", "--device", help="auto, cpu, cuda or cuda:N (auto: a GPU when PyTorch sees one)."
    ),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP, case_sensitive=False),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (default: the runtime's choice)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notes."),
) -> None:
    """Predict a label mask for every image, at any size (tiled, Gaussian-blended)."""
    from PIL import Image
    from tqdm import tqdm

    from pixelwise.data.io import image_size, read_image, write_mask
    from pixelwise.files import atomic_path
    from pixelwise.inference.predictor import Predictor
    from pixelwise.inference.tiling import tile_grid

    if out.exists() and not out.is_dir():
        raise PixelwiseError(f"{out}: exists and is not a folder; give a folder for --out")
    if threads is not None and threads < 1:
        raise PixelwiseError(f"--threads {threads}: give 1 or more")
    images = collect_images(inputs)
    targets = {image: out / f"{image.stem}.png" for image in images}
    existing = [path for image in images for path in _outputs(out, image, save_overlay, save_probabilities)]
    existing = [path for path in existing if path.exists()]
    if existing and not overwrite:
        shown = ", ".join(str(path) for path in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise PixelwiseError(
            f"{len(existing)} output files exist already ({shown}); add --overwrite or pick another --out"
        )

    def note(message: str) -> None:
        if not quiet:
            print(f"note: {message}", file=sys.stderr)

    with _notes(note):
        if threads is not None and model.suffix.lower() != ".onnx":
            # without PyTorch, loading the checkpoint says so in one line
            with contextlib.suppress(ImportError):
                import torch

                torch.set_num_threads(threads)
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
    sizes = {image: image_size(image) for image in images}
    total = sum(len(tile_grid(*sizes[image], predictor.tile_size, predictor.overlap)) for image in images)
    with tqdm(total=total, desc="predict", unit="tile", disable=True if quiet else None, file=sys.stderr) as bar:
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
                    Image.fromarray(overlay(image, labels, predictor.classes)).save(tmp, format="PNG")
    if not quiet:
        runtime = getattr(predictor.backend, "description", type(predictor.backend).__name__)
        print(f"wrote {len(images)} masks to {out} ({runtime})")


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


def _outputs(out: Path, image: Path, save_overlay: bool, save_probabilities: bool) -> list[Path]:
    paths = [out / f"{image.stem}.png"]
    if save_overlay:
        paths.append(out / "overlays" / f"{image.stem}.png")
    if save_probabilities:
        paths.append(out / "probabilities" / f"{image.stem}.npy")
    return paths
