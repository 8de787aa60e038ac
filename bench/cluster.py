"""`--workers 2` (a Dask LocalCluster of two worker processes) against one process, on the same cores.

(a) Throughput: RGB images of 512² (200 by default) through ``pixelwise predict`` with a unet-small
    (random weights) exported to ``.onnx`` (the default runtime for it: OpenVINO where installed, else ONNX
    Runtime; the workers import no PyTorch):
    one process with ``--threads 2``, one with ``--threads 1``, and ``--workers 2 --threads 1`` (two workers
    of one thread each: two threads in all, as the first). Images/s in the steady state (from the first
    image the job's record lists to the last, read as it grows), the CPU seconds per image of every process
    of the run together in that state (what a loaded machine cannot blur: on free cores two single-thread
    workers give 2 / that figure), and the whole command's seconds (the cluster's start and every model
    load included). The masks of ``--workers 2`` are compared byte for byte
    with those of the one-process runs.
(b) Memory: the peak resident set of each process of a run (the client; each worker), sampled every 0.1 s,
    in every run, and in one more of ``--workers 2`` with the checkpoint itself in PyTorch.
(c) Overhead per task: tiny images (5,000 of 16², by default) through ``pixelwise classical otsu``, where the
    work per image is next to nothing: images/s in one process and on ``--workers 2``, and the time an image
    costs a worker beyond the work itself (2 / cluster rate - 1 / one-process rate; images travel in chunks).

Target (issue 26): (a) ``--workers 2`` >= 1.7x the images/s of one process with two threads, masks identical.
The figures hold for the load they ran under, printed with them: on a shared machine they are not the
free-core figures.

    .venv/bin/python bench/cluster.py                  # about 15 minutes on two free cores
    .venv/bin/python bench/cluster.py --quick          # smoke run: 12 images of 256², 300 tiny ones
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from pixelwise.files import JOB_MANIFEST


@dataclass
class Run:
    """One command's figures: seconds in all, steady-state images/s, peak RSS (MiB) per process role."""

    label: str
    seconds: float
    rate: float
    memory: dict[str, float] = field(default_factory=dict)
    summary: str = ""  # the command's last line (which runtime it ran in)
    cpu: float = 0.0  # CPU seconds per image in the steady state, every process of the run together


def checkpoint(folder: Path) -> Path:
    import torch

    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=3, in_channels=3)
    path = folder / "run" / "best.pt"
    save_checkpoint(
        path,
        Checkpoint(
            model="unet-small",
            model_options={},
            state_dict=model.state_dict(),
            classes=ClassSpec.default(3),
            normalization=Normalization((0.5,) * 3, (0.25,) * 3),
            in_channels=3,
            tile_size=256,
        ),
    )
    return path


def write_images(folder: Path, count: int, size: int, channels: int) -> Path:
    folder.mkdir(parents=True)
    generator = np.random.default_rng(0)
    shape = (size, size, channels) if channels > 1 else (size, size)
    for index in range(count):
        # smooth blobs rather than noise: masks with regions, PNGs of a realistic size
        noise = generator.random(shape).astype(np.float32)
        pixels = np.clip(noise * 60 + 100 + 80 * np.sin(np.arange(size) / 17.0 + index)[:, None, ...], 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"im{index:05d}.png")
    return folder


def finished_count(out: Path) -> int:
    try:
        return (out / JOB_MANIFEST).read_text().count('"done"')
    except FileNotFoundError:
        return 0


def role(process: psutil.Process, client: int) -> str | None:
    if process.pid == client:
        return "client"
    command = " ".join(process.cmdline())
    if "spawn_main" in command:
        return f"worker {process.pid}"
    return None  # multiprocessing's resource tracker and the like


def timed(label: str, command: list[str], out: Path, env: dict[str, str]) -> Run:
    """Run ``command`` (a pixelwise command writing into ``out``), sampling its record and its memory."""
    started = time.monotonic()
    # the output is a line or two (-q): read once the command ended
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[tuple[float, int, float]] = []  # (time, images the record lists, CPU s of the tree) at each change
    peaks: dict[str, float] = {}
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        count = finished_count(out)
        cpu = 0.0
        try:
            for member in [watched, *watched.children(recursive=True)]:
                times = member.cpu_times()
                cpu += times.user + times.system
                name = role(member, process.pid)
                if name is not None:
                    peaks[name] = max(peaks.get(name, 0.0), member.memory_info().rss / 2**20)
        except psutil.Error:
            continue  # a process ended between the listing and the reading: sample again
        if count and (not seen or count != seen[-1][1]):
            seen.append((time.monotonic(), count, cpu))
        time.sleep(0.1)
    seconds = time.monotonic() - started
    stderr = process.stderr.read() if process.stderr else ""
    said = process.stdout.read().strip().splitlines() if process.stdout else []
    if process.returncode != 0:
        raise SystemExit(f"{label}: {' '.join(command)} failed:\n{stderr}")
    # the steady state: from the first image recorded to the last
    (first, first_count, first_cpu), (last, last_count, last_cpu) = seen[0], seen[-1]
    rate = (last_count - first_count) / (last - first) if last > first else 0.0
    cpu = (last_cpu - first_cpu) / (last_count - first_count) if last_count > first_count else 0.0
    return Run(label, seconds, rate, peaks, said[-1] if said else "", cpu)


def same_files(first: Path, second: Path, pattern: str) -> tuple[int, int]:
    """(files equal byte for byte, files compared): every ``pattern`` file of ``first`` against ``second``'s."""
    files = sorted(first.glob(pattern))
    equal = sum(
        (second / file.name).is_file() and file.read_bytes() == (second / file.name).read_bytes() for file in files
    )
    return equal, len(files)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def show(run: Run, reference: Run | None = None) -> None:
    ratio = f"  {run.rate / reference.rate:.2f}x" if reference is not None and reference.rate else ""
    memory = ", ".join(f"{name} {value:.0f} MiB" for name, value in sorted(run.memory.items()))
    print(
        f"  {run.label:<34} {run.rate:7.2f} images/s{ratio:<8} {1000 * run.cpu:8.1f} CPU ms/image "
        f"{run.seconds:6.1f} s in all   [{memory}]"
    )
    print(f"    ({run.summary}; {load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tiny", type=int, default=5000, help="images in the overhead run")
    parser.add_argument("--quick", action="store_true", help="12 images of 256², 300 tiny ones")
    options = parser.parse_args()
    if options.quick:
        options.images, options.size, options.tiny = 12, 256, 300

    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    env = {**os.environ, "PIXELWISE_CACHE": str(root / "cache")}
    python = [sys.executable, "-m", "pixelwise"]
    model = checkpoint(root)
    images = write_images(root / "images", options.images, options.size, 3)
    print(f"{load()}; data in {root}")

    # the model as users deploy it: exported once (outside the timings); an .onnx runs in the fastest installed
    # runtime (OpenVINO, then ONNX Runtime), and the workers import no PyTorch
    onnx = root / "model.onnx"
    subprocess.run([*python, "export", str(model), "-o", str(onnx), "-q"], env=env, check=True, capture_output=True)

    print(f"(a) predict, {options.images} images of {options.size}², unet-small exported to .onnx")
    predict = [*python, "predict", str(onnx), str(images), "-q", "-o"]
    two = timed("one process, --threads 2", [*predict, str(root / "p2"), "--threads", "2"], root / "p2", env)
    show(two)
    one = timed("one process, --threads 1", [*predict, str(root / "p1"), "--threads", "1"], root / "p1", env)
    show(one, two)
    workers_command = [*predict, str(root / "w2"), "--workers", "2", "--threads", "1"]
    workers = timed("--workers 2 --threads 1", workers_command, root / "w2", env)
    show(workers, two)
    for other, label in ((root / "p2", "--threads 2"), (root / "p1", "--threads 1")):
        equal, total = same_files(root / "w2", other, "*.png")
        print(f"  masks of --workers 2 equal to one process {label}: {equal} of {total}")

    print("(b) memory with the checkpoint in PyTorch (--backend torch): --workers 2 on 20 of the images")
    some = root / "some"
    some.mkdir()
    for image in sorted(images.glob("*.png"))[:20]:
        (some / image.name).symlink_to(image)
    torch_run = [*python, "predict", str(model), str(some), "-q", "--backend", "torch", "--workers", "2"]
    show(
        timed(
            ".pt, --backend torch, --workers 2",
            [*torch_run, "--threads", "1", "-o", str(root / "t2")],
            root / "t2",
            env,
        )
    )

    print(f"(c) classical otsu, {options.tiny} images of 16²: the overhead per task")
    tiny = write_images(root / "tiny", options.tiny, 16, 1)
    classical = [*python, "classical", "otsu", str(tiny), "-q", "-o"]
    here = timed("one process", [*classical, str(root / "c1")], root / "c1", env)
    show(here)
    there = timed("--workers 2", [*classical, str(root / "c2"), "--workers", "2"], root / "c2", env)
    show(there, here)
    if here.rate and there.rate:
        overhead = 2 / there.rate - 1 / here.rate
        print(
            f"  an image costs a worker {1000 * overhead:.1f} ms of time beyond its work ({1000 / here.rate:.1f} ms "
            f"in one process) and the cluster {1000 * (there.cpu - here.cpu):.1f} ms of CPU (client, scheduler and "
            "workers together); images travel in chunks of about half a second of work, which share a task's cost"
        )
    equal, total = same_files(root / "c2", root / "c1", "*.tif")
    print(f"  region files of --workers 2 equal to one process: {equal} of {total}")


if __name__ == "__main__":
    main()
