"""Data-parallel speed-up on this machine: training images/s of 1 process against N (DDP, gloo on CPUs).

Each process runs pixelwise's own training step (``Trainer.train_step`` through ``DistributedDataParallel``,
joined the way ``torchrun`` joins them: ``train.distributed.processes`` reading RANK, WORLD_SIZE, ...) on a
batch of its own, with the same number of threads and the same per-process batch on both sides: N
processes train a global batch N times as large, so the ideal is N times the images per second. Data
loading is left out (synthetic batches): this measures compute and the gradient all-reduce.

Rounds alternate between 1 and N processes, so that a neighbour's load on a shared machine hits both alike;
printed: the median images/s of each side, the speed-up (median of the per-round ratios) and its spread.
On a machine others share, the wall-clock speed-up measures the share of the cores the bench wins as much
as DDP; so the bench also prints images per CPU-second (CPU time of all the bench's processes, their
communication threads included): their ratio is what DDP costs in compute, whatever the neighbours do
(1.0: nothing; with N free cores the speed-up would be about N times that).
Target on two free cores: >= 1.6x with 2 processes. On GPUs the real case is one process per GPU (NCCL):
``--device cuda`` (as many processes as GPUs at most).

    .venv/bin/python bench/ddp.py                       # unet-small, batch 8 at 128², 1 thread per process
    .venv/bin/python bench/ddp.py --processes 2 --threads 1 --rounds 5 --steps 8
    .venv/bin/python bench/ddp.py --device cuda --processes 4 --batch-size 16 --size 512
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp


def worker(rank: int, world: int, port: int, args: argparse.Namespace, results: str) -> None:
    """One process: join the others as under torchrun, time ``args.steps`` training steps after a warm-up."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(args.threads)
    from pixelwise.data.classes import ClassSpec
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.distributed import barrier, processes
    from pixelwise.train.trainer import build_trainer

    config = TrainConfig(model=args.model, batch_size=args.batch_size, device=args.device, process_timeout=300)
    with processes(config.device, timeout=config.process_timeout) as device:
        torch.manual_seed(rank)
        images = torch.randn(args.batch_size, 3, args.size, args.size)
        masks = torch.randint(0, 4, (args.batch_size, args.size, args.size))
        trainer = build_trainer(config, classes=ClassSpec.default(4), in_channels=3, total_iterations=10**6)
        assert trainer.device == device
        for _ in range(2):  # warm-up: allocator, oneDNN kernels, DDP's buckets
            trainer.train_step(images, masks)
        barrier()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            trainer.train_step(images, masks)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        cpu = time.process_time() - cpu_started
        barrier()
        elapsed = time.perf_counter() - started
    Path(results, str(rank)).write_text(f"{elapsed} {cpu}")


def measure(world: int, args: argparse.Namespace) -> tuple[float, float]:
    """(images per second, images per CPU-second) of ``world`` processes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(worker, args=(world, port, args, folder), nprocs=world, join=True)
        times = [[float(value) for value in Path(folder, str(rank)).read_text().split()] for rank in range(world)]
    images = world * args.batch_size * args.steps
    return images / max(wall for wall, _ in times), images / sum(cpu for _, cpu in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: one GPU per process")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    parser.add_argument("--model", default="unet-small")
    parser.add_argument("--batch-size", type=int, default=8, help="per process")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # every process on this machine: the loopback

    before = os.getloadavg()
    alone: list[tuple[float, float]] = []
    together: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        alone.append(measure(1, args))
        together.append(measure(args.processes, args))
    after = os.getloadavg()
    speeds = ([wall for wall, _ in alone], [wall for wall, _ in together])
    per_cpu = ([cpu for _, cpu in alone], [cpu for _, cpu in together])
    ratios = [many / one for one, many in zip(*speeds, strict=True)]
    cpu_ratios = [many / one for one, many in zip(*per_cpu, strict=True)]
    print(
        f"{args.model}, device {args.device}, batch {args.batch_size} x 3 x {args.size}² per process, "
        f"{args.threads} thread(s) per "
        f"process, {os.cpu_count()} CPUs, {args.rounds} rounds x {args.steps} steps; load average before "
        f"{before[0]:.1f}, after {after[0]:.1f} (this bench adds up to {args.processes * args.threads})"
    )
    for name, (walls, cpus) in {
        "1 process": (speeds[0], per_cpu[0]),
        f"{args.processes} processes": (speeds[1], per_cpu[1]),
    }.items():
        print(
            f"  {name:12s} {statistics.median(walls):8.2f} images/s (rounds {_spread(walls)}), "
            f"{statistics.median(cpus):6.2f} images per CPU-second (rounds {_spread(cpus)})"
        )
    print(
        f"  speed-up     {statistics.median(ratios):8.2f}x (median; rounds {_spread(ratios)}); ideal {args.processes}x"
    )
    print(
        f"  per CPU-second, {args.processes} processes / 1: {statistics.median(cpu_ratios):.3f} "
        f"(rounds {_spread(cpu_ratios)}); 1.0 = DDP costs no compute"
    )


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


if __name__ == "__main__":
    main()
