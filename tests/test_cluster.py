"""Jobs on a Dask cluster of two worker processes: the same files as one process, nothing lost and nothing
done twice when a worker or the client dies, and one line for a scheduler that is not there.

One ``LocalCluster`` serves the module; the commands reach it with ``--cluster ADDRESS`` as they would a
cluster elsewhere.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("distributed")

import cloudpickle

from pixelwise.cluster import DaskExecutor, open_cluster
from pixelwise.data.classes import ClassSpec
from pixelwise.data.sources import ImageSource
from pixelwise.errors import PixelwiseError
from pixelwise.files import JOB_MANIFEST, output_lock
from pixelwise.jobs import Item, Job, collect_items, run_job
from pixelwise.sinks import PredictionBand, make_sink

# the workers cannot import this file (pytest's importlib mode): its tasks travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLASSES = ClassSpec.default(2)


@pytest.fixture(scope="module")
def executor() -> Iterator[DaskExecutor]:
    with open_cluster(workers=2, threads=1, quiet=True) as executor:
        yield executor


def address(executor: DaskExecutor) -> str:
    return str(executor.client.scheduler_info()["address"])


def images(folder: Path, count: int, *, size: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = np.random.default_rng(index).integers(0, 256, (size, size + index)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    return folder


def threshold_task(
    item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
) -> Iterator[PredictionBand]:
    """Class 1 where the grey value is above a half, in bands of five rows (with made-up probabilities)."""
    for top in range(0, source.info.height, 5):
        rows = min(5, source.info.height - top)
        grey = source.read(top, 0, rows, source.info.width)[:, :, 0].astype(np.float32)
        values = np.stack([1 - grey, grey]) if probabilities else None
        yield PredictionBand(top, (grey > 0.5).astype(np.uint8), probabilities=values)
    progress(1)


def dies_once(marks: Path, victim: str, item: Item, source: ImageSource, **options: Any) -> Iterator[PredictionBand]:
    """``threshold_task``, but the worker that first takes ``victim`` dies after its first band."""
    bands = threshold_task(item, source, **options)
    if item.name == victim and not (marks / victim).exists():
        (marks / victim).touch()
        yield next(bands)  # written into the temporary files
        os.kill(os.getpid(), signal.SIGKILL)
    yield from bands


def kills_always(victim: str, item: Item, source: ImageSource, **options: Any) -> Iterator[PredictionBand]:
    """``threshold_task``, but ``victim`` kills every worker that takes it."""
    if item.name == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    yield from threshold_task(item, source, **options)


def bad_setting(item: Item, source: ImageSource, **options: Any) -> Iterator[PredictionBand]:
    raise PixelwiseError("otsu: classes must be an integer >= 2, got 'zero'")
    yield  # a generator


def job(source: Path, out: Path, sinks: tuple[str, ...] = ("mask",)) -> Job:
    return Job(collect_items([source]), out, [make_sink(name) for name in sinks], CLASSES, settings={"run": 1})


def files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` but the record and the lock, by its path within it."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name not in (JOB_MANIFEST, ".pixelwise.lock")
    }


def finished(out: Path) -> list[str]:
    lines = [json.loads(line) for line in (out / JOB_MANIFEST).read_text().splitlines()]
    return [line["done"] for line in lines if "done" in line]


def test_two_workers_write_what_one_process_writes(executor: DaskExecutor, tmp_path: Path) -> None:
    source = images(tmp_path / "in", 6)
    sinks = ("mask", "overlay", "probabilities")
    run_job(job(source, tmp_path / "here", sinks), threshold_task, quiet=True)
    report = run_job(job(source, tmp_path / "there", sinks), threshold_task, quiet=True, executor=executor)
    assert sorted(report.written) == [f"img{index}" for index in range(6)] and not report.failed
    assert files(tmp_path / "there") == files(tmp_path / "here")
    assert sorted(finished(tmp_path / "there")) == sorted(report.written)
    # a second client on the same folder is refused by the folder's lock, before any task
    with output_lock(tmp_path / "busy"), pytest.raises(PixelwiseError, match="another pixelwise process"):
        run_job(job(source, tmp_path / "busy"), threshold_task, quiet=True, executor=executor)
    # an error of the settings on a worker stops the job, as in one process
    with pytest.raises(PixelwiseError, match="classes must be an integer"):
        run_job(job(source, tmp_path / "bad"), bad_setting, quiet=True, executor=executor)
    assert not (tmp_path / "bad" / JOB_MANIFEST).exists()


def test_a_worker_killed_mid_image_leaves_nothing_partial_and_nothing_twice(
    executor: DaskExecutor, tmp_path: Path
) -> None:
    source = images(tmp_path / "in", 6)
    (tmp_path / "marks").mkdir()
    sinks = ("mask", "probabilities")
    task = functools.partial(dies_once, tmp_path / "marks", "img2")
    report = run_job(job(source, tmp_path / "out", sinks), task, quiet=True, executor=executor)
    assert (tmp_path / "marks" / "img2").exists()  # a worker did die in the middle of img2
    assert sorted(report.written) == [f"img{index}" for index in range(6)] and not report.failed
    assert sorted(finished(tmp_path / "out")) == sorted(report.written)  # each once
    # the dead worker's temporary files are gone; the files are those of one process
    run_job(job(source, tmp_path / "here", sinks), threshold_task, quiet=True)
    assert files(tmp_path / "out") == files(tmp_path / "here")


@pytest.mark.slow
def test_an_image_that_kills_every_worker_fails_alone(tmp_path: Path) -> None:
    import dask

    source = images(tmp_path / "in", 40, size=4)
    # Dask gives up on a task after two deaths (its default: four), pixelwise tries it again alone once: four
    # deaths make an image a killer; a task of several images is split, so that the others are written
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        open_cluster(workers=2, threads=1, quiet=True) as executor,
    ):
        task = functools.partial(kills_always, "img17")
        report = run_job(job(source, tmp_path / "out"), task, quiet=True, executor=executor)
    assert [(path.name, "4 Dask workers died" in line) for path, line in report.failed] == [("img17.png", True)]
    assert len(report.written) == 39 and len(set(finished(tmp_path / "out"))) == 39


CLIENT = """
import sys, time
from pathlib import Path
import numpy as np
from pixelwise.cluster import open_cluster
from pixelwise.data.classes import ClassSpec
from pixelwise.jobs import Job, collect_items, run_job
from pixelwise.sinks import PredictionBand, make_sink

def slow(item, source, *, probabilities, progress):
    time.sleep(0.4)
    grey = source.read(0, 0, source.info.height, source.info.width)[:, :, 0]
    yield PredictionBand(0, (grey > 0.5).astype(np.uint8))

address, source, out = sys.argv[1:]
job = Job(collect_items([Path(source)]), Path(out), [make_sink("mask")], ClassSpec.default(2), settings={"run": 1})
with open_cluster(address=address, quiet=True) as executor:
    run_job(job, slow, quiet=True, executor=executor)
"""


def test_a_rerun_after_the_client_was_killed_does_only_the_rest(executor: DaskExecutor, tmp_path: Path) -> None:
    source = images(tmp_path / "in", 12)
    out = tmp_path / "out"
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(CLIENT))
    client = subprocess.Popen([sys.executable, str(script), address(executor), str(source), str(out)])
    try:
        deadline = time.monotonic() + 60
        while not ((out / JOB_MANIFEST).exists() and len(finished(out)) >= 2) and time.monotonic() < deadline:
            assert client.poll() is None, "the client ended before it could be killed"
            time.sleep(0.05)
    finally:
        client.kill()
        client.wait()
    before = finished(out)
    assert 2 <= len(before) < 12
    report = run_job(job(source, out), threshold_task, quiet=True, executor=executor)
    assert sorted(report.complete) == sorted(before) and not set(report.written) & set(before)
    assert sorted(finished(out)) == [f"img{index}" for index in sorted(range(12), key=str)]  # each once
    run_job(job(source, tmp_path / "here"), threshold_task, quiet=True)
    assert files(out) == files(tmp_path / "here")


@pytest.mark.slow
def test_predict_and_evaluate_on_the_cluster_equal_one_process(
    executor: DaskExecutor, cli: Any, tmp_path: Path, small_unet_checkpoint: Any
) -> None:
    checkpoint = small_unet_checkpoint(tmp_path / "run" / "best.pt", classes=ClassSpec.default(3))
    source = images(tmp_path / "in", 4, size=40)
    # the objects' sink too: its parts written by the workers, its tables joined by the client
    flags = ("--backend", "torch", "--instances")
    here = cli("predict", checkpoint, source, "-o", tmp_path / "here", *flags, "-q")
    assert here.returncode == 0, here.stderr
    there = cli("predict", checkpoint, source, "-o", tmp_path / "there", *flags, "--cluster", address(executor))
    assert there.returncode == 0, there.stderr
    assert "wrote 4 masks" in there.stdout and f"Dask cluster {address(executor)}: 2 workers" in there.stderr
    assert files(tmp_path / "there") == files(tmp_path / "here")
    assert (tmp_path / "there" / "instances" / "objects.csv").is_file()
    # the scores of one process, from per-image counts summed over the workers
    (tmp_path / "classes.yaml").write_text("classes: [a, b, c]\n")
    (tmp_path / "truth").mkdir()
    for mask in (tmp_path / "here").glob("*.png"):  # one run's masks as the truth of the other's
        (tmp_path / "truth" / mask.name).write_bytes(mask.read_bytes())
    scores = [
        cli("evaluate", tmp_path / "there", tmp_path / "truth", "--classes", tmp_path / "classes.yaml", *flags)
        for flags in ((), ("--cluster", address(executor)))
    ]
    assert [result.returncode for result in scores] == [0, 0], scores[1].stderr
    assert scores[0].stdout == scores[1].stdout and "images: 4" in scores[1].stdout


def test_a_scheduler_that_cannot_be_reached_is_one_line(cli: Any, tmp_path: Path) -> None:
    source = images(tmp_path / "in", 1)
    started = time.monotonic()
    result = cli("classical", "otsu", source, "-o", tmp_path / "out", "--cluster", "tcp://127.0.0.1:1")
    assert time.monotonic() - started < 20
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "pixelwise: error: --cluster tcp://127.0.0.1:1: no Dask scheduler answers there" in result.stderr
    assert not (tmp_path / "out").exists()
    both = cli("classical", "otsu", source, "-o", tmp_path / "out", "--cluster", "tcp://h:1", "--workers", "2")
    assert both.returncode == 2 and "exclude each other" in both.stderr
    for folder in ("predicted", "truth"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.eye(8, dtype=np.uint8)).save(tmp_path / folder / "a.png")
    objects = cli("evaluate", tmp_path / "predicted", tmp_path / "truth", "--instances", "--workers", "2")
    assert objects.returncode == 2 and "--instances scores objects in this process" in objects.stderr
