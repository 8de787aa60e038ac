"""Gigapixel images out of core (issue 20): memory, throughput, MONAI, the background skip, label agreement.

Every measured run is a fresh subprocess, so that its peak resident memory (``wait4``'s ``ru_maxrss``) is its
own. The images are written tile by tile (JPEG tiles, as slides have them; ``imagecodecs``), never whole.
The model is ``unet-small`` with random weights whose BatchNorm statistics are moved off 0/1, as after
training, so that its labels vary with the image; ``--threads 1`` everywhere, torch backend (MONAI runs
torch too).

- ``rss``: ``pixelwise predict`` on RGB tiled TIFFs of 10,000², 20,000² and 40,000² (``--sizes``), every tile
  run (``--no-foreground-mask``): peak RSS and time. ``--width`` picks unet-small's width (16 is the model's
  own; 4 is a tiny one for the largest images on two shared cores: say which).
- ``compare``: one image that fits both ways (``--size``, default 4096²), the same model: the streamed path
  (``pixelwise predict`` on the tiled TIFF: read by region, tiled TIFF mask), the in-memory path (the whole
  image read, ``Predictor.predict_labels`` on the array), MONAI's ``sliding_window_inference`` (Gaussian,
  the same tile, overlap and batch, on the whole standardised tensor) and MONAI's ``PatchInferer`` with a
  ``SlidingWindowSplitter`` and its ``ZarrAvgMerger`` (the merged logits on disk; the input in memory,
  because MONAI's lazy ``WSISlidingWindowSplitter`` needs OpenSlide or cuCIM, absent here: its TiffFile
  reader decodes the whole level for every patch). Peak RSS, time, the streamed/in-memory throughput
  ratio, and how many labels of the streamed mask differ from the in-memory ones.
- ``foreground``: a synthetic pyramidal slide (0.5 µm/px) with 30 % tissue: ``pixelwise predict`` with the
  foreground mask (its default for such a file) against ``--no-foreground-mask``.

    .venv/bin/python bench/gigapixel.py rss --width 4
    .venv/bin/python bench/gigapixel.py compare
    .venv/bin/python bench/gigapixel.py foreground
    .venv/bin/python bench/gigapixel.py all --quick     # a smoke run of everything, small sizes

Results are printed as JSON lines and appended to ``--results`` (default ``WORK/results.jsonl``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TILE, OVERLAP, BATCH, CLASSES = 256, 0.5, 4, 3
MEAN, STD = 0.6, 0.2
FILE_TILE = 512


# --- the image and the model -----------------------------------------------------------------------------------


def synthetic(
    top: int,
    left: int,
    height: int,
    width: int,
    *,
    step: int = 1,
    tissue: float = 1.0,
    extent: int = 40_000,
    labels: bool = False,
) -> np.ndarray:
    """(h, w, 3) uint8 of a slide-like picture at full-resolution rows ``top``, columns ``left`` (every
    ``step``-th pixel): stained 'tissue' with cell-like blobs where a smooth field is below the ``tissue``
    quantile over the ``extent``² image, white glass elsewhere; with ``labels`` its (h, w) classes instead
    (glass 0, tissue 1, cells 2).
    A pure function of the position: any tile, any level, the same picture."""
    rows = (top + np.arange(height) * step).astype(np.float32)[:, None]
    columns = (left + np.arange(width) * step).astype(np.float32)[None, :]
    field = np.sin(rows / 1900.0) + np.sin(columns / 2300.0) + 0.6 * np.sin((rows + columns) / 700.0)
    cells = np.sin(rows / 9.0) * np.sin(columns / 11.0) + 0.5 * np.sin((rows - columns) / 23.0) > 0.3
    inside = field < np.float32(_quantile(tissue, extent))
    if labels:
        return (inside.astype(np.uint8) + (inside & cells)).astype(np.uint8)
    red = np.where(inside, 200 - 60 * cells, 238)
    green = np.where(inside, 120 - 70 * cells + 20 * np.sin(columns / 37.0), 236)
    blue = np.where(inside, 190 - 30 * cells, 240)
    return np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)


@functools.cache
def _quantile(share: float, extent: int) -> float:
    """The value of the smooth field below which ``share`` of an ``extent``² image lies (on a sample)."""
    if share >= 1.0:
        return 10.0
    rows = np.linspace(0, extent, 1000, dtype=np.float32)[:, None]
    columns = np.linspace(0, extent, 1000, dtype=np.float32)[None, :]
    field = np.sin(rows / 1900.0) + np.sin(columns / 2300.0) + 0.6 * np.sin((rows + columns) / 700.0)
    return float(np.quantile(field, share))


def write_image(path: Path, size: int, *, tissue: float = 1.0, levels: int = 1, mpp: float | None = None) -> Path:
    """A ``size``² RGB tiled TIFF (JPEG tiles of ``FILE_TILE``), written tile by tile, with ``levels`` levels."""
    import tifffile

    if path.exists():
        return path
    partial = path.with_suffix(".partial.tif")
    with tifffile.TiffWriter(partial, bigtiff=size * size * 3 > 2**31) as tiff:
        for level in range(levels):
            step = 2**level
            side = -(-size // step)

            def tiles(step: int = step, side: int = side) -> Any:
                for top in range(0, side, FILE_TILE):
                    for left in range(0, side, FILE_TILE):
                        yield synthetic(
                            top * step, left * step, FILE_TILE, FILE_TILE, step=step, tissue=tissue, extent=size
                        )

            extra: dict[str, Any] = {}
            if mpp is not None and level == 0:
                extra = {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"}
            tiff.write(
                tiles(),
                shape=(side, side, 3),
                dtype=np.uint8,
                tile=(FILE_TILE, FILE_TILE),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": 90},
                subfiletype=1 if level else 0,
                metadata=None,
                **extra,
            )
    partial.rename(path)
    return path


def write_model(path: Path, width: int, *, iterations: int = 80) -> Path:
    """unet-small of ``width`` trained briefly on crops of the synthetic picture (glass, tissue, cells), so
    that its labels vary with the image as a real model's do."""
    import torch

    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.registry import create_model

    if path.exists():
        return path
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = create_model("unet-small", num_classes=CLASSES, in_channels=3, width=width, depth=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(iterations):
        corners = rng.integers(0, 30_000, (4, 2))
        images = np.stack([synthetic(top, left, 128, 128, tissue=0.5) for top, left in corners])
        targets = np.stack([synthetic(top, left, 128, 128, tissue=0.5, labels=True) for top, left in corners])
        batch = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD
        loss = torch.nn.functional.cross_entropy(model(batch), torch.from_numpy(targets).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    save_checkpoint(
        path,
        Checkpoint(
            model="unet-small",
            model_options={"width": width, "depth": 4},
            state_dict=model.state_dict(),
            classes=ClassSpec.default(CLASSES),
            normalization=Normalization((MEAN,) * 3, (STD,) * 3),
            in_channels=3,
            tile_size=TILE,
        ),
    )
    return path


# --- the measured runs (each in its own process) -----------------------------------------------------------------


def measured(command: list[str], **environment: str) -> dict[str, Any]:
    """Run ``command``; its wall time, its own peak RSS in MiB (``wait4``), and the last JSON line it printed."""
    import tempfile

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **environment}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        printed, errors = stdout.read(), stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {errors[-2000:]}")
    result: dict[str, Any] = {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024)}
    lines = [line for line in printed.splitlines() if line.startswith("{")]
    if lines:
        result.update(json.loads(lines[-1]))
    return result


def cli_predict(model: Path, image: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pixelwise", "predict", str(model), str(image), "-o", str(out),
        "--threads", "1", "--backend", "torch", "--batch-size", str(BATCH), "--overlap", str(OVERLAP), "-q",
        "--overwrite", *extra,
    ]  # fmt: skip


def pixelwise_run(model: str, image: str, kind: str, out: str) -> None:
    """After the model is loaded: ``streamed`` (``predict_file`` on the tiled TIFF: read by region, a tiled
    TIFF mask) or ``memory`` (the whole image read as ``predict`` read it before issue 20, ``predict_labels``,
    a PNG mask); prints the time of that part."""
    import torch

    from pixelwise.data.io import write_mask
    from pixelwise.data.sources import open_image
    from pixelwise.inference.predictor import Predictor

    torch.set_num_threads(1)
    predictor = Predictor.load(model, backend="torch", batch_size=BATCH, overlap=OVERLAP)
    started = time.perf_counter()
    if kind == "streamed":
        predictor.predict_file(image, out, foreground=False, overwrite=True)
    else:
        with open_image(image) as source:  # a plain TIFF: data.io.read_image, float32 in [0, 1]
            labels = predictor.predict_labels(source)
        Path(out).mkdir(parents=True, exist_ok=True)
        write_mask(Path(out) / (Path(image).stem + ".png"), labels, predictor.classes)
    print(json.dumps({"predict_seconds": round(time.perf_counter() - started, 1)}))


def monai_run(model: str, image: str, kind: str, labels: str) -> None:
    """MONAI on the whole standardised image: ``sliding_window_inference`` or ``PatchInferer`` + ZarrAvgMerger."""
    import tempfile

    import tifffile
    import torch
    from monai.inferers import PatchInferer, SlidingWindowSplitter, sliding_window_inference
    from monai.inferers.merger import ZarrAvgMerger

    from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint

    torch.set_num_threads(1)
    network = model_from_checkpoint(load_checkpoint(model))
    pixels = tifffile.imread(image, level=0)
    tensor = torch.from_numpy(pixels).permute(2, 0, 1)[None].float().div_(255).sub_(MEAN).div_(STD)
    del pixels
    started = time.perf_counter()
    with torch.inference_mode():
        if kind == "sliding_window_inference":
            logits = sliding_window_inference(
                tensor, TILE, BATCH, network, overlap=OVERLAP, mode="gaussian", sigma_scale=0.125
            )
            result = logits[0].argmax(0).to(torch.uint8).numpy()
        else:
            with tempfile.TemporaryDirectory(dir=Path(labels).parent) as store:
                inferer = PatchInferer(
                    splitter=SlidingWindowSplitter(TILE, overlap=OVERLAP),
                    merger_cls=ZarrAvgMerger,
                    batch_size=BATCH,
                    store=str(Path(store) / "merged.zarr"),
                )
                merged = inferer(tensor, network)
                result = np.asarray(merged[0]).argmax(0).astype(np.uint8)
    seconds = time.perf_counter() - started
    np.save(labels, result)
    print(json.dumps({"predict_seconds": round(seconds, 1)}))


# --- the benchmarks --------------------------------------------------------------------------------------------


def bench_rss(work: Path, sizes: list[int], width: int) -> list[dict[str, Any]]:
    model = write_model(work / f"unet-small-w{width}.pt", width)
    rows = []
    for size in sizes:
        image = write_image(work / f"tiled-{size}.tif", size)
        run = measured(cli_predict(model, image, work / f"out-rss-{size}", "--no-foreground-mask"))
        rows.append(
            {
                "bench": "rss",
                "size": size,
                "width": width,
                **run,
                "megapixels_per_second": round(size * size / 1e6 / run["seconds"], 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_compare(work: Path, size: int, width: int) -> list[dict[str, Any]]:
    import tifffile

    from pixelwise.data.io import read_mask

    model = write_model(work / f"unet-small-w{width}.pt", width)
    image = write_image(work / f"tiled-{size}.tif", size)
    # the same pixels as a plain TIFF, which predict reads whole (the in-memory path, as before issue 20)
    plain = work / f"plain-{size}.tif"
    if not plain.exists():
        tifffile.imwrite(plain, tifffile.imread(image, level=0), photometric="rgb")
    script = str(Path(__file__).resolve())
    labels = {name: work / f"labels-{name}-{size}.npy" for name in ("sliding_window_inference", "zarr")}
    streamed_out, memory_out = work / f"out-streamed-{size}", work / f"out-memory-{size}"
    runs = {
        "pixelwise streamed: tiled TIFF read by region, tiled TIFF mask": [
            sys.executable, script, "_pixelwise", str(model), str(image), "streamed", str(streamed_out)
        ],
        "pixelwise in memory: plain TIFF read whole, predict_labels, PNG mask": [
            sys.executable, script, "_pixelwise", str(model), str(plain), "memory", str(memory_out)
        ],
        "MONAI sliding_window_inference (whole tensor)": [
            sys.executable, script, "_monai", str(model), str(image), "sliding_window_inference",
            str(labels["sliding_window_inference"]),
        ],
        "MONAI PatchInferer + SlidingWindowSplitter + ZarrAvgMerger": [
            sys.executable, script, "_monai", str(model), str(image), "patch_inferer_zarr", str(labels["zarr"])
        ],
    }  # fmt: skip
    rows = []
    for name, command in runs.items():
        rows.append({"bench": "compare", "size": size, "width": width, "path": name, **measured(command)})
        print(json.dumps(rows[-1]), flush=True)
    streamed = read_mask(streamed_out / f"tiled-{size}.tif")
    whole = read_mask(memory_out / f"plain-{size}.png")
    swi = np.load(labels["sliding_window_inference"])
    summary = {
        "bench": "compare",
        "size": size,
        "width": width,
        "streamed_over_in_memory_throughput": round(rows[1]["predict_seconds"] / rows[0]["predict_seconds"], 3),
        "labels_differing_streamed_vs_in_memory": int((streamed != whole).sum()),
        "labels_equal_share": round(float((streamed == whole).mean()), 7),
        "pixels_per_class": np.bincount(whole.ravel(), minlength=CLASSES).tolist(),
        "agreement_with_monai_sliding_window_inference": round(float((swi == whole).mean()), 6),
        "agreement_with_monai_zarr_average": round(float((np.load(labels["zarr"]) == whole).mean()), 6),
    }
    rows.append(summary)
    print(json.dumps(summary), flush=True)
    return rows


def bench_foreground(work: Path, size: int, width: int) -> list[dict[str, Any]]:
    model = write_model(work / f"unet-small-w{width}.pt", width)
    image = write_image(work / f"slide-{size}.tif", size, tissue=0.3, levels=4, mpp=0.5)
    rows = []
    for label, extra in (
        ("foreground mask (default)", ()),
        ("every tile (--no-foreground-mask)", ("--no-foreground-mask",)),
    ):
        run = measured([*cli_predict(model, image, work / f"out-fg-{size}-{len(extra)}"), *extra])
        rows.append({"bench": "foreground", "size": size, "width": width, "run": label, **run})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", choices=["rss", "compare", "foreground", "all", "_pixelwise", "_monai"])
    parser.add_argument("arguments", nargs="*")
    parser.add_argument("--work", type=Path, default=Path("bench-gigapixel"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--width", type=int, default=None, help="unet-small's width (16: the model's own)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--results", type=Path, default=None)
    options = parser.parse_args()
    if options.bench == "_pixelwise":
        return pixelwise_run(*options.arguments)
    if options.bench == "_monai":
        return monai_run(*options.arguments)
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(json.dumps({"load_average": [round(value, 2) for value in load], "cpus": os.cpu_count()}), flush=True)
    rows: list[dict[str, Any]] = []
    sizes = [512, 1024] if options.quick else options.sizes
    if options.bench in ("rss", "all"):
        rows += bench_rss(work, sizes, options.width or 4)
    if options.bench in ("compare", "all"):
        rows += bench_compare(work, options.size or (768 if options.quick else 4096), options.width or 16)
    if options.bench in ("foreground", "all"):
        rows += bench_foreground(work, options.size or (1024 if options.quick else 6144), options.width or 16)
    with (options.results or work / "results.jsonl").open("a") as handle:
        for row in [{"load_average_at_start": load}, *rows, {"load_average_at_end": os.getloadavg()}]:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
