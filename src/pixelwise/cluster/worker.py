"""What runs on a cluster's workers: a job's plugin (set up once per worker), its tasks, and the warnings of
a task turned into its notes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from distributed import get_worker
from distributed.comm import get_address_host
from distributed.diagnostics.plugin import WorkerPlugin

from pixelwise.jobs import Item, Job, Task, process_item

if TYPE_CHECKING:
    from pixelwise.data.sources import ImageSource

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """The cores this process may run on (its affinity: a container's or a batch job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class _Prepared:
    """What a worker keeps for a job: the job to write, the task, how an item's image is opened."""

    job: Job
    task: Task
    open_source: Callable[[Item], ImageSource]


class JobPlugin(WorkerPlugin):
    """A job's state on every worker, set up once per worker: runtime threads, the task's model loaded.

    ``threads``: runtime threads per image; None: the worker's cores shared by the Dask threads of all the
    workers on its machine (``host_threads``, as the client saw them; a worker that joins later counts its
    own alone).
    """

    def __init__(
        self,
        job: Job,
        task: Task,
        open_source: Callable[[Item], ImageSource],
        *,
        threads: int | None,
        host_threads: dict[str, int],
    ) -> None:
        self.prepared = _Prepared(job, task, open_source)
        self.threads = threads
        self.host_threads = host_threads
        self._limits: Any = None

    async def setup(self, worker: Any) -> None:
        sharing = self.host_threads.get(get_address_host(worker.address), getattr(worker, "nthreads", 1))
        # a model takes seconds to load: off the event loop, which must keep answering the scheduler
        await asyncio.to_thread(self._prepare, self.threads or max(1, usable_cores() // max(1, sharing)))

    def _prepare(self, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=threads)
        prepare = getattr(self.prepared.task, "prepare", None)
        if prepare is not None:
            with _notes():  # the client said the model's notes as it loaded it
                prepare(threads=threads)

    def teardown(self, worker: Any) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()


@dataclass(frozen=True)
class Done:
    """What a task gives back: ``values`` (one per item of its chunk, in order), the ``notes`` its warnings
    made (a job's are in its outcomes instead), and the ``seconds`` its items took (to size later chunks)."""

    values: list[Any]
    notes: list[str]
    seconds: float


def process_on_worker(plugin_name: str, items: list[Item]) -> Done:
    """A task: a chunk of images on this worker, one after another, each with the notes its warnings make."""
    plugin = get_worker().plugins[plugin_name]
    assert isinstance(plugin, JobPlugin)
    prepared = plugin.prepared
    started = time.perf_counter()
    outcomes = []
    for item in items:
        with _notes() as notes:
            outcome = process_item(prepared.job, prepared.task, item, open_source=prepared.open_source)
        outcomes.append(replace(outcome, notes=tuple(dict.fromkeys(notes))))
    return Done(outcomes, [], time.perf_counter() - started)


def with_notes(function: Callable[[T], R], items: list[T]) -> Done:
    """A task of ``DaskExecutor.map``: ``function`` of each item of a chunk, and the notes its warnings make."""
    started = time.perf_counter()
    with _notes() as notes:
        values = [function(item) for item in items]
    return Done(values, notes, time.perf_counter() - started)


@contextlib.contextmanager
def _notes() -> Iterator[list[str]]:
    """The warnings raised in this thread during the block, as one line each."""
    _route_warnings()
    notes: list[str] = []
    _collector.notes = notes
    try:
        yield notes
    finally:
        _collector.notes = None


# warnings of a task become its notes: one collector per worker thread (warnings' own catch_warnings is
# process-wide state, not safe with several tasks at once); installed once per worker process
_collector = threading.local()
_routed = threading.Lock()


def _route_warnings() -> None:
    with _routed:
        if getattr(warnings.showwarning, "pixelwise_notes", False):
            return
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            notes = getattr(_collector, "notes", None)
            if notes is None:
                shown(message, category, filename, lineno, file, line)
            else:
                notes.append(" ".join(str(message).split()))

        show.pixelwise_notes = True  # type: ignore[attr-defined]
        warnings.showwarning = show
        # every image's warnings, not only the first image's at each line of code
        warnings.simplefilter("always")
