"""`pixelwise export` time per architecture: every exportable model of `pixelwise models`, default encoder.

    .venv/bin/python bench/export.py                       # every architecture, one after another
    .venv/bin/python bench/export.py --models unet fcn     # some of them
    .venv/bin/python bench/export.py --timeout 600         # give up on one after 10 minutes (a row says so)

Each architecture is built with random weights (3 input channels, 3 classes, seeded), saved as a checkpoint
the way `pixelwise train` writes it, and exported by ``pixelwise.inference.onnx_export.export`` in a fresh
process (imports and torch's exporter caches count, as on a user's first export). The row splits the export
into loading the checkpoint, tracing and writing the ONNX graph (``onnx_bytes``) and the parity checks
(ONNX Runtime against PyTorch on four shapes), with the process's CPU time beside the wall time: on a shared
machine the wall time includes waiting for a core, the CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUM_CLASSES = 3
IN_CHANNELS = 3


def save_checkpoint_of(name: str, path: Path) -> None:
    """A checkpoint of architecture ``name`` (default options and encoder, random weights) at ``path``."""
    import torch

    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES, in_channels=IN_CHANNELS)
    stored = {key: value for key, value in model.spec.items() if key not in ("name", "num_classes", "in_channels")}
    save_checkpoint(
        path,
        Checkpoint(
            model=name,
            model_options=stored,
            state_dict=model.state_dict(),
            classes=ClassSpec.default(NUM_CLASSES),
            normalization=Normalization((0.5,) * IN_CHANNELS, (0.25,) * IN_CHANNELS),
            in_channels=IN_CHANNELS,
            tile_size=256,
            stride=model.stride,
        ),
    )


def export_one(name: str, folder: Path) -> dict[str, object]:
    """Save, load, export and check architecture ``name``; seconds (wall and CPU) of each step."""
    from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint
    from pixelwise.inference import onnx_export
    from pixelwise.inference.spec import InferenceSpec

    checkpoint = folder / f"{name}.pt"
    save_checkpoint_of(name, checkpoint)
    times: dict[str, object] = {"model": name}
    clock = time.perf_counter(), time.process_time()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter(), time.process_time()
        times[step] = (now[0] - clock[0], now[1] - clock[1])
        clock = now

    loaded = load_checkpoint(checkpoint)
    spec = InferenceSpec.from_checkpoint(loaded)
    model = model_from_checkpoint(loaded)
    lap("load")
    data = onnx_export.onnx_bytes(model, spec)
    lap("export")
    checks = onnx_export.check_parity(model, data, spec)
    lap("parity")
    times["megabytes"] = len(data) / 2**20
    times["passed"] = all(check.passed for check in checks)
    times["largest_difference"] = max(check.max_difference for check in checks)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="architectures (default: every exportable one)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one architecture is given up")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: export one, print JSON
    arguments = parser.parse_args()
    if arguments.one:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(export_one(arguments.one, Path(folder))))
        return

    from pixelwise.inference.onnx_export import exportable
    from pixelwise.models.registry import list_models

    names = arguments.models or [name for name in list_models() if exportable(name)]
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; one process each")
    print()
    print("| model | read s | export s (CPU) | parity s (CPU) | total s | MiB | parity |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in names:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--one", name],
                capture_output=True,
                text=True,
                timeout=arguments.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"| {name} | — | gave up after {arguments.timeout:.0f} s | — | — | — | — |", flush=True)
            continue
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["?"])[-1][:100]
            print(f"| {name} | failed: {reason} | | | | | |", flush=True)
            continue
        times = json.loads(done.stdout.strip().splitlines()[-1])
        (load_s, _), (export_s, export_cpu), (parity_s, parity_cpu) = times["load"], times["export"], times["parity"]
        total = time.perf_counter() - started
        verdict = f"{'ok' if times['passed'] else 'FAILED'} ({times['largest_difference']:.0e})"
        print(
            f"| {name} | {load_s:.1f} | {export_s:.1f} ({export_cpu:.1f}) | {parity_s:.1f} ({parity_cpu:.1f}) | "
            f"{total:.1f} | {times['megabytes']:.1f} | {verdict} |",
            flush=True,
        )
    load = os.getloadavg()
    print(f"\nload average afterwards {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
