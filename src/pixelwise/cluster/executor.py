"""``DaskExecutor``: a job's images, or any function over items, as tasks on a cluster, results as they finish."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import secrets
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from distributed import Client, KilledWorker, as_completed
from distributed.comm import get_address_host

from pixelwise.cluster.worker import Done, JobPlugin, process_on_worker, with_notes
from pixelwise.errors import PixelwiseError
from pixelwise.files import JOB_MANIFEST, LOCK_FILE, is_bookkeeping
from pixelwise.jobs import Item, Job, Outcome, Task

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageSource
    from pixelwise.metrics import Evaluator

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT_PER_THREAD = 4  # tasks submitted ahead per Dask thread: enough to keep workers busy, few futures
MIN_IN_FLIGHT = 32
TASK_SECONDS = 0.5  # what a task of tiny images is made to last
MAX_CHUNK = 256
STATUS_INTERVAL = 1.0  # seconds between two asks for the number of workers alive


def has_bokeh() -> bool:
    """Whether Dask's dashboard can be served here (it needs bokeh)."""
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


class _Sizer:
    """How many items a task takes: one at first, then as many as fill ``TASK_SECONDS`` at the pace seen so
    far (tiny images share the per-task cost, a few milliseconds of messages), at most ``MAX_CHUNK`` and few
    enough that every Dask thread gets several tasks."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.items = 0
        self.seconds = 0.0

    def learn(self, items: int, seconds: float) -> None:
        self.items += items
        self.seconds += seconds

    def size(self, threads: int) -> int:
        if not self.items:
            return 1
        pace = self.seconds / self.items
        wanted = MAX_CHUNK if pace <= 0 else int(TASK_SECONDS / pace)
        balanced = self.total // (IN_FLIGHT_PER_THREAD * max(1, threads))
        return max(1, min(wanted, MAX_CHUNK, balanced))


class DaskExecutor:
    """Runs a job's images (``run``, the ``jobs.Executor`` seam) or any function over items (``map``) as tasks
    on the cluster of ``client``. ``threads``: runtime threads per image (None: each worker's cores over its
    Dask threads)."""

    counts_units = False  # the client hears of finished images only, not of their tiles

    def __init__(self, client: Client, *, threads: int | None, address: str, remote: bool) -> None:
        self.client = client
        self.remote = remote
        self.threads = threads
        self.address = address
        self._workers = 0
        self._threads_total = 0
        self._asked = 0.0

    def describe(self) -> str:
        """``Dask cluster tcp://...: 2 workers, 1 thread each; dashboard http://.../status``."""
        info = self.client.scheduler_info()
        per_worker = self.client.nthreads()  # worker address -> its Dask threads
        threads, count = sorted(set(per_worker.values())), len(per_worker)
        each = f", {'/'.join(map(str, threads))} Dask thread{'s' if threads != [1] else ''} each" if threads else ""
        where = info.get("address", self.address)
        # a scheduler names a dashboard port even without bokeh to serve it: a local one is checked here
        if "dashboard" in info.get("services", {}) and (self.remote or has_bokeh()):
            dashboard = f"dashboard {self.client.dashboard_link}"
        else:
            dashboard = "no dashboard (pip install bokeh for one)"
        waiting = "; no workers yet: the work starts when some join" if not count else ""
        return f"Dask cluster {where}: {count} workers{each}; {dashboard}{waiting}"

    def run(
        self,
        job: Job,
        task: Task,
        items: Sequence[Item],
        *,
        open_source: Callable[[Item], ImageSource],
        bar: Any,
        quiet: bool,
    ) -> Generator[Outcome, None, None]:
        """Each item on a worker through ``jobs.process_item``; outcomes as they finish."""
        # the workers get what they write with, never the job's list of inputs (it may hold millions)
        shipped = replace(job, items=(), input_folders=(), input_files=(), out=job.out.absolute())
        # one name per client machine and OUT (whose lock makes it one job at a time): the plugin of a client
        # that was killed, left on the workers with its model, is replaced by the next run's
        name = "pixelwise-job-" + hashlib.sha1(f"{socket.gethostname()}:{shipped.out}".encode()).hexdigest()[:12]
        host_threads: Counter[str] = Counter()
        for worker, threads in self.client.nthreads().items():
            host_threads[get_address_host(worker)] += threads
        plugin = JobPlugin(shipped, task, open_source, threads=self.threads, host_threads=dict(host_threads))
        self.client.register_plugin(plugin, name=name)
        try:
            shipped_items = [Item(item.path.absolute(), item.name) for item in items]
            for chunk, done in self._completed(functools.partial(process_on_worker, name), shipped_items, bar):
                if isinstance(done, KilledWorker):
                    yield Outcome(chunk[0].name, failure=_killer_line(chunk[0]))
                    continue
                yield from done.values
        finally:
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(name)
            _remove_temporaries(job, items)

    def map(self, function: Callable[[T], R], items: Sequence[T], *, bar: Any, quiet: bool) -> Iterator[R]:
        """``function(item)`` on the workers for every item; the results as they finish, in any order. The
        warnings raised become ``note:`` lines here, each once."""
        said: set[str] = set()
        for _, done in self._completed(functools.partial(with_notes, function), items, bar):
            if isinstance(done, KilledWorker):
                raise self._gone()
            for note in done.notes:
                if not quiet and note not in said:
                    said.add(note)
                    bar.write(f"note: {note}", file=sys.stderr)
            yield from done.values

    def _gone(self) -> PixelwiseError:
        return PixelwiseError(
            f"{self.address}: the cluster lost the work's tasks (its scheduler or its workers went away); run the "
            "same command again"
        )

    def _completed(
        self, function: Callable[[list[Any]], Done], items: Sequence[Any], bar: Any
    ) -> Iterator[tuple[list[Any], Done | KilledWorker]]:
        """(chunk, what ``function(chunk)`` gave) for chunks of ``items``, as tasks finish. Chunks grow while
        items are quick (``_Sizer``); a bounded number of tasks is in flight; on any exit the rest are
        cancelled; any error of a task is raised, but Dask's ``KilledWorker`` (every worker that took the
        task died). Dask blames that on every task a dying worker held, those queued behind the one running
        too: a chunk that gets it is split, and an item that gets it alone is tried once more at the end, by
        itself on the cluster. If it kills its workers then, it alone gives the ``KilledWorker``."""
        run = secrets.token_hex(4)
        remaining = iter(items)
        again: deque[list[Any]] = deque()  # chunks split after a KilledWorker, submitted first
        suspects: deque[list[Any]] = deque()  # lone items after a KilledWorker, tried alone at the end
        futures: dict[Any, tuple[list[Any], bool]] = {}  # future -> (its chunk, whether it runs alone)
        queue = as_completed(loop=self.client.loop, with_results=True, raise_errors=False)
        counter = itertools.count()
        sizer = _Sizer(len(items))
        started = time.monotonic()
        exhausted = False

        def send(chunk: list[Any], *, alone: bool) -> None:
            future = self.client.submit(function, chunk, key=f"pixelwise-{run}-{next(counter)}", pure=False)
            futures[future] = (chunk, alone)
            queue.add(future)

        def submit(count: int) -> None:
            nonlocal exhausted
            for _ in range(count):
                chunk = again.popleft() if again else list(itertools.islice(remaining, sizer.size(self._threads_total)))
                if not chunk:
                    exhausted = True
                    break
                send(chunk, alone=False)
            if exhausted and not again and not futures and suspects:
                send(suspects.popleft(), alone=True)

        self._refresh()
        submit(self._in_flight())
        done = 0
        try:
            for future, result in queue:
                chunk, alone = futures.pop(future)
                # told apart by what came back, not by the future's status: a result gathered just before its
                # worker died is there, though the future says "lost" (and its task may run again)
                if isinstance(result, Done):
                    sizer.learn(len(chunk), result.seconds)
                    value: Done | KilledWorker = result
                elif not (isinstance(result, tuple) and isinstance(result[1], BaseException)):
                    raise self._gone()  # cancelled: the scheduler or the workers went away
                elif not isinstance(result[1], KilledWorker):
                    raise result[1].with_traceback(result[2])
                elif len(chunk) > 1 or not alone:
                    if len(chunk) > 1:
                        again.extend([item] for item in chunk)
                    else:
                        suspects.append(chunk)
                    submit(max(0, self._in_flight() - len(futures)))
                    continue
                else:
                    value = result[1]
                submit(max(0, self._in_flight() - len(futures)))
                done += len(chunk)
                bar.update(len(chunk))
                bar.set_postfix_str(self._status(done, started))
                yield chunk, value
        finally:
            if futures:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(futures), force=True)

    def _in_flight(self) -> int:
        self._refresh()
        return max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * self._threads_total)

    def _status(self, done: int, started: float) -> str:
        """``3.2 images/s, 2 workers`` (tqdm adds the time left; the plain lines their own)."""
        self._refresh()
        elapsed = max(time.monotonic() - started, 1e-9)
        return f"{done / elapsed:.1f}/s, {self._workers} worker{'s' if self._workers != 1 else ''}"

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._asked < STATUS_INTERVAL and self._workers:
            return
        self._asked = now
        threads = self.client.nthreads()  # worker address -> its Dask threads
        self._workers = len(threads)
        self._threads_total = sum(threads.values())


def score_pairs(
    executor: DaskExecutor, pairs: Sequence[tuple[Path, Path]], evaluator: Evaluator, *, quiet: bool
) -> int:
    """Add every (prediction, truth) pair of mask files to ``evaluator``, each image scored on a worker and
    its counts (confusion matrix, boundary matches) summed here: the score one process gives, exactly.
    Returns how many pixels the predictions marked as no data (left out, ``data.pairing.without_no_data``)."""
    from pixelwise.progress import progress_bar

    score = functools.partial(_score_pair, evaluator.classes, evaluator.boundary.tolerance)
    absolute = [(prediction.absolute(), truth.absolute()) for prediction, truth in pairs]
    left_out = 0
    with progress_bar(total=len(pairs), desc="evaluate", unit="image", quiet=quiet) as bar:
        for part, no_data in executor.map(score, absolute, bar=bar, quiet=quiet):
            evaluator.merge(part)
            left_out += no_data
    return left_out


def _score_pair(classes: ClassSpec, tolerance: float, pair: tuple[Path, Path]) -> tuple[Evaluator, int]:
    from pixelwise.data.io import read_mask
    from pixelwise.data.pairing import without_no_data
    from pixelwise.metrics import Evaluator

    prediction_path, truth_path = pair
    prediction = read_mask(prediction_path, classes)
    truth, no_data = without_no_data(prediction, read_mask(truth_path, classes), classes)
    part = Evaluator(classes, boundary_tolerance=tolerance)
    part.add(prediction, truth, name=str(prediction_path))
    return part, no_data


def _remove_temporaries(job: Job, items: Sequence[Item]) -> None:
    """Remove the temporary files that writers killed mid-image (a worker process that died) left in the
    folders of ``items``' outputs. Only while the job holds the folder: no live writer of this job can
    be using them (one still running would fail at its last step and leave no file)."""
    for folder in {path.parent for item in items for path in job.targets(item)}:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(folder):
                if is_bookkeeping(entry.name) and entry.name not in (LOCK_FILE, JOB_MANIFEST) and entry.is_file():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def _killer_line(item: Item) -> str:
    """The failure of an image whose every worker died (Dask's ``KilledWorker``): most likely its memory."""
    import dask

    # Dask's tries of a task (allowed-failures + 1), twice: among the others, then alone
    attempts = 2 * (dask.config.get("distributed.scheduler.allowed-failures") + 1)
    return (
        f"{item.path}: {attempts} Dask workers died while processing this image (out of memory?); give the "
        "workers more memory or process it on a larger machine"
    )
