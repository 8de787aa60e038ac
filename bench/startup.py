"""Start-up and first use: `pixelwise --help`, and the time to the first mask of `predict`, first use and second.

    .venv/bin/python bench/startup.py                     # unet-small and unet (EfficientNet-Lite0), 13 images
    .venv/bin/python bench/startup.py --models unet-small --repeat 3

Every figure is one fresh process, as a user starts it: imports, reading the checkpoint, building the
backend and writing the masks count. The images are 13 of 233 x 197 (the case of issue 24, where the first
`predict` of a Lite0 checkpoint took 583 s because `auto` exported to ONNX first). For each model, in order:

- `predict --backend auto` with an empty cache (first use: no export is made, so PyTorch runs);
- `pixelwise export` of the checkpoint (what makes the next `auto` faster, on request);
- `predict --backend auto` again (second use: the cached export in the fastest installed runtime);
- `predict --backend torch`, the reference.

Beside the wall time stands the CPU time of the process tree (on a shared machine the wall time includes
waiting for a core). Baselines in the same run: `python -c pass` and `python -c "import torch"`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from export import save_checkpoint_of  # noqa: E402  (bench/export.py: a checkpoint the way train writes it)

PIXELWISE = [sys.executable, "-m", "pixelwise"]
IMAGES = 13
HEIGHT, WIDTH = 233, 197


def timed(command: list[str], environment: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (children's user + system) of one fresh process running ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def write_images(folder: Path) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(IMAGES):
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"image{index:02d}.png")


def predict(
    checkpoint: Path, images: Path, out: Path, backend: str, environment: dict[str, str]
) -> tuple[float, float]:
    command = [*PIXELWISE, "predict", str(checkpoint), str(images), "-o", str(out), "--backend", backend, "--quiet"]
    return timed(command, environment)


def row(label: str, figures: list[tuple[float, float]]) -> str:
    best = min(figures)
    every = ", ".join(f"{wall:.1f}" for wall, _ in figures)
    return f"| {label} | {best[0]:.2f} | {best[1]:.2f} |" + (f" every run: {every}" if len(figures) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["unet-small", "unet"], help="architectures to predict with")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each short command (the best is shown)")
    arguments = parser.parse_args()

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print("\n| step | wall s | CPU s |\n| --- | ---: | ---: |")
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}
    short = {
        "`python -c pass`": [sys.executable, "-c", "pass"],
        '`python -c "import torch"`': [sys.executable, "-c", "import torch"],
        "`pixelwise --help`": [*PIXELWISE, "--help"],
    }
    for label, command in short.items():
        print(row(label, [timed(command, environment) for _ in range(arguments.repeat)]), flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        images = root / "images"
        write_images(images)
        for name in arguments.models:
            checkpoint = root / f"{name}.pt"
            save_checkpoint_of(name, checkpoint)
            # a cache of its own: the first `auto` finds no export, as on a fresh install
            cached = {**environment, "PIXELWISE_CACHE": str(root / f"cache-{name}")}

            print(
                row(
                    f"{name}: `predict --backend auto`, first use",
                    [predict(checkpoint, images, root / f"{name}-first", "auto", cached)],
                ),
                flush=True,
            )
            export = [*PIXELWISE, "export", str(checkpoint)]
            print(row(f"{name}: `pixelwise export`", [timed(export, cached)]), flush=True)
            second = [
                predict(checkpoint, images, root / f"{name}-second-{run}", "auto", cached)
                for run in range(arguments.repeat)
            ]
            print(row(f"{name}: `predict --backend auto`, after the export", second), flush=True)
            torch = [
                predict(checkpoint, images, root / f"{name}-torch-{run}", "torch", cached)
                for run in range(arguments.repeat)
            ]
            print(row(f"{name}: `predict --backend torch`", torch), flush=True)
    load = os.getloadavg()
    print(f"\nload average afterwards {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
