"""Latency and throughput of `pixelwise serve` under N concurrent clients, against one real server, one run.

    .venv/bin/python bench/serve.py [--clients 8] [--requests 6] [--model best.pt] [--slots 1] [--threads T]

The server is the ``pixelwise serve`` command in its own process, as deployed, on 127.0.0.1 with a free
port. The model is ``--model`` or a ``unet-small`` checkpoint of the default size with random weights
(speed does not depend on training), 2 classes, tile 256. The image is the built-in quokka photo (960 × 643
JPEG), answered as the default palette PNG mask.

Two phases in the same run: one client sending ``--requests`` requests one after another (the latency of an
idle server), then ``--clients`` clients at once, each sending ``--requests`` on its own keep-alive
connection. The queue is as long as the clients, so every request is admitted: the figures show queueing,
not refusals (503s are counted and should be 0). Reported: p50 / p95 / max latency as the client sees it,
throughput (answers per second of wall time), and the server's own split (Server-Timing) of the median
request. With one slot a CPU-bound model serves a fixed rate: concurrency raises latency, not throughput.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
QUOKKA = ROOT / "src" / "pixelwise" / "assets" / "quokka" / "quokka.jpg"


def make_checkpoint(folder: Path) -> Path:
    """A unet-small checkpoint (default width and depth) with random weights and the quokka classes."""
    import torch

    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
    from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
    from pixelwise.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=3)
    return save_checkpoint(
        folder / "best.pt",
        Checkpoint(
            model="unet-small",
            model_options={},
            state_dict=model.state_dict(),
            classes=QUOKKA_CLASSES,
            normalization=Normalization((0.5,) * 3, (0.25,) * 3),
            in_channels=3,
            tile_size=256,
        ),
    )


def start_server(model: Path, *, clients: int, slots: int, threads: int) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "pixelwise",
        "serve",
        str(model),
        "--port",
        "0",
        "--slots",
        str(slots),
        "--queue",
        str(clients),
        "--threads",
        str(threads),
        "--quiet",
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert server.stdout is not None
    banner = server.stdout.readline().strip()
    match = re.search(r"(http://\S+) ", banner)
    if not match:
        server.kill()
        raise SystemExit(f"the server did not start: {banner!r}")
    print(banner)
    url = match[1]
    deadline = time.monotonic() + 120
    while True:
        address = urlparse(url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        try:
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("the server did not become ready in 120 s")
        time.sleep(0.1)
    return server, url


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n\r\n'
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def run_clients(url: str, clients: int, requests: int, body: bytes, content_type: str) -> dict[str, Any]:
    """``clients`` threads at once, each sending ``requests`` requests; latencies of the 200s and the rest."""
    address = urlparse(url)
    latencies: list[float] = []
    timings: list[dict[str, float]] = []
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client() -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=600)
        start.wait()
        for _ in range(requests):
            began = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
                answer = connection.getresponse()
                answer.read()
            except OSError as error:
                with lock:
                    errors.append(repr(error))
                connection.close()
                continue
            seconds = time.perf_counter() - began
            split = dict(re.findall(r"(\w+);dur=([\d.]+)", answer.getheader("Server-Timing") or ""))
            with lock:
                statuses.append(answer.status)
                if answer.status == 200:
                    latencies.append(seconds)
                    timings.append({key: float(value) / 1000 for key, value in split.items()})
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "timings": timings, "statuses": statuses, "errors": errors, "wall": wall}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(label: str, result: dict[str, Any]) -> None:
    latencies = result["latencies"]
    ok = len(latencies)
    refused = result["statuses"].count(503)
    other = len(result["statuses"]) - ok - refused
    line = f"{label:<22}"
    if latencies:
        line += (
            f"p50 {percentile(latencies, 0.5):6.2f} s   p95 {percentile(latencies, 0.95):6.2f} s   "
            f"max {max(latencies):6.2f} s   throughput {ok / result['wall']:5.2f} images/s"
        )
    line += f"   ({ok} × 200, {refused} × 503, {other} other, {len(result['errors'])} connection errors)"
    print(line)
    if result["timings"]:
        middle = sorted(result["timings"], key=lambda split: sum(split.values()))[len(result["timings"]) // 2]
        print(
            " " * 22 + "server split of the median request: " + ", ".join(f"{k} {v:.3f} s" for k, v in middle.items())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=6, help="requests per client")
    parser.add_argument("--model", type=Path, help="a checkpoint; default: a random-weight unet-small")
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0))))
    options = parser.parse_args()

    print(f"load average before: {' '.join(f'{value:.2f}' for value in os.getloadavg())}; cores {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as folder:
        model = options.model or make_checkpoint(Path(folder))
        server, url = start_server(model, clients=options.clients, slots=options.slots, threads=options.threads)
        try:
            body, content_type = multipart(QUOKKA.read_bytes(), "quokka.jpg")
            run_clients(url, 1, 2, body, content_type)  # warm-up: first-call allocations
            report("1 client", run_clients(url, 1, options.requests, body, content_type))
            report(
                f"{options.clients} clients",
                run_clients(url, options.clients, options.requests, body, content_type),
            )
        finally:
            server.terminate()
            server.wait(30)
    print(f"load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
