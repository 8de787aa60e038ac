"""What ``--logger tensorboard`` and ``--logger mlflow`` cost a training run, per training step (issue 25).

The same run (seed, data, iterations) is trained with no logger, with TensorBoard, with MLflow and with
both, in rounds that alternate between them so that a neighbour's load hits each alike. Two measures:

- **within each run** (what the load cannot skew between runs): the seconds spent inside the loggers'
  per-epoch work (``Loggers.log_epoch``: the overlays' forward passes, the scalars, the images, MLflow's
  artifacts) over the run's training seconds, and that time spread over the epoch's steps: the
  overhead per training step. Goal: at most 2 %.
- **end to end**: the median wall time of each configuration and its ratio to no logger; it includes the
  loggers' one-off costs (importing mlflow, opening and closing the runs, copying ``best.pt``).

    .venv/bin/python bench/loggers.py                       # unet-small, shapes 64², 4 epochs of 50 steps, CPU
    .venv/bin/python bench/loggers.py --quick               # smoke run
    .venv/bin/python bench/loggers.py --device cuda --iterations 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pixelwise.data.datasets import dataset_root
from pixelwise.data.folder import SegmentationFolder
from pixelwise.train import loop
from pixelwise.train.config import TrainConfig
from pixelwise.train.loggers import Loggers

CONFIGURATIONS: dict[str, list[str]] = {
    "none": [],
    "tensorboard": ["tensorboard"],
    "mlflow": ["mlflow"],
    "both": ["tensorboard", "mlflow"],
}


def one_run(config: TrainConfig, names: list[str], folder: Path) -> dict[str, float]:
    """Train once with ``names``; the wall time, the training seconds and the loggers' per-epoch seconds."""
    root = folder / "data"
    train = SegmentationFolder(root, "train")
    val = SegmentationFolder(root, "val", classes=train.classes, in_channels=train.in_channels)
    opened: list[Loggers] = []
    real_open = Loggers.open

    def keep(*args: Any, **kwargs: Any) -> Loggers:
        loggers = real_open(*args, **kwargs)
        opened.append(loggers)
        return loggers

    Loggers.open = keep  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        result = loop.fit(
            config, train, val, out_dir=folder / "runs" / "run", progress=False, loggers=names, force=True
        )
        wall = time.perf_counter() - started
    finally:
        Loggers.open = real_open  # type: ignore[method-assign]
    steps = result.history[-1]["iteration"]
    logging = opened[0].seconds if opened else 0.0
    # an epoch's seconds are its steps and its validation; the loggers' work comes after them
    training = sum(record["seconds"] for record in result.history)
    return {"wall": wall, "training": training, "logging": logging, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=50, help="steps per epoch")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.epochs, arguments.iterations, arguments.rounds = 2, 5, 1
    torch.set_num_threads(arguments.threads)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # a store of the bench's own, beside its run
    config = TrainConfig(
        epochs=arguments.epochs,
        iterations_per_epoch=arguments.iterations,
        batch_size=8,
        crop_size=arguments.size,
        patience=0,
        device=arguments.device,
    )
    with tempfile.TemporaryDirectory(prefix="pixelwise-bench-loggers-") as scratch:
        os.environ["PIXELWISE_CACHE"] = scratch
        source = dataset_root("shapes", count=200, size=arguments.size)
        measures: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGURATIONS}
        for round_number in range(arguments.rounds):
            for name, names in CONFIGURATIONS.items():
                folder = Path(scratch) / f"{name}-{round_number}"
                folder.mkdir()
                (folder / "data").symlink_to(source)
                measures[name].append(one_run(config, names, folder))
                print(f"round {round_number + 1} {name}: {measures[name][-1]}", flush=True)
    steps = arguments.epochs * arguments.iterations
    base = statistics.median(run["wall"] for run in measures["none"])
    print(f"\n{steps} steps ({arguments.epochs} epochs of {arguments.iterations}), load {os.getloadavg()[0]:.1f}")
    print(f"{'loggers':<12} {'wall s':>8} {'x none':>7} {'logging s/epoch':>16} {'per step':>9} {'of training':>12}")
    for name, runs in measures.items():
        wall = statistics.median(run["wall"] for run in runs)
        logging = statistics.median(run["logging"] for run in runs)
        training = statistics.median(run["training"] for run in runs)
        print(
            f"{name:<12} {wall:8.1f} {wall / base:7.3f} {logging / arguments.epochs:16.3f} "
            f"{1000 * logging / steps:7.2f}ms {100 * logging / training:11.2f}%"
        )


if __name__ == "__main__":
    main()
