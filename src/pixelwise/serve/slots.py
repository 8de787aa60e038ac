"""A fixed number of inference slots with a short queue before them: CPU-bound work that sheds load.

Each inference runs in a worker thread, never on the event loop, at most ``slots`` at a time. Up to
``queue`` more requests wait for a slot; a request beyond that is refused at once (:class:`ServerBusy`,
answered 503 with Retry-After) rather than queued without bound: a CPU-bound model serves a fixed rate,
and a longer queue only makes every answer later. Memory is bounded the same way: an image is decoded
inside its slot, so at most ``slots`` images are in memory as pixels.

Each request is a :class:`Job` that knows its cost (tiles × TTA passes), how many of its tiles are done and
whether it was cancelled (its client left). Retry-After is the work admitted, at the speed measured on the
recent inferences: the rest of each running job (from its own progress) and the whole of each waiting one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

Result = TypeVar("Result")

# weight of the newest inference in the running mean of seconds per unit of cost
_SMOOTHING = 0.2
# seconds per unit of cost before anything was measured (the warm-up measures it)
_FIRST_GUESS = 1.0


class ServerBusy(Exception):
    """Every slot is working and the queue is full; ``retry_after`` is a fair wait in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"every inference slot is busy and the queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class JobCancelled(Exception):
    """Raised in the worker thread when the job was cancelled: the work stops at its next check."""


class Job:
    """One request's work: ``cost`` units (tiles × passes) over ``windows`` tiles; thread-safe to cancel.

    The worker calls :meth:`tiles_done` after each batch of tiles (the predictor's ``progress``) and
    :meth:`check` between its steps; both raise :class:`JobCancelled` once :meth:`cancel` was called.
    """

    def __init__(self, cost: int = 1, windows: int = 1) -> None:
        self.cost = max(1, cost)
        self.windows = max(1, windows)
        self.done = 0  # tiles; written by the worker thread only
        self.started: float | None = None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled

    def tiles_done(self, count: int) -> None:
        self.done += count
        self.check()


class InferenceSlots:
    """``slots`` worker threads' worth of inference and a queue of ``queue`` waiting requests.

    Create it inside the running event loop (the app's lifespan): its limiter belongs to that loop.
    """

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self.seconds_per_unit = _FIRST_GUESS
        self.measured = False
        self._jobs: set[Job] = set()  # running + waiting; touched on the event loop only, so no lock
        self._limiter = anyio.CapacityLimiter(slots)

    @property
    def admitted(self) -> int:
        return len(self._jobs)

    @property
    def running(self) -> int:
        return int(self._limiter.borrowed_tokens)

    async def run(self, job: Job, function: Callable[..., Result], *args: object) -> tuple[Result, float]:
        """``function(*args)`` in a worker thread once a slot is free, and the seconds it waited for it.

        Raises :class:`ServerBusy` at once when the slots and the queue are full. Cancelling the calling
        task while the job waits takes it out of the queue; while it runs, the thread finishes (or stops at
        the job's next check, once the job is cancelled), so that the count of busy slots stays true.
        """
        if self.admitted >= self.slots + self.queue:
            raise ServerBusy(self.retry_after())
        self._jobs.add(job)
        arrived = time.perf_counter()
        finished = 0.0

        def timed() -> Result:
            nonlocal finished
            job.started = time.perf_counter()
            result = function(*args)
            finished = time.perf_counter()  # a refusal or a failure is no measure of the pace
            return result

        try:
            result = await anyio.to_thread.run_sync(timed, limiter=self._limiter)
        finally:
            self._jobs.discard(job)
            if finished and job.started is not None:
                self._measure((finished - job.started) / job.cost)
        return result, job.started - arrived if job.started is not None else 0.0

    def _measure(self, seconds_per_unit: float) -> None:
        if not self.measured:
            self.seconds_per_unit, self.measured = seconds_per_unit, True
        else:
            self.seconds_per_unit += _SMOOTHING * (seconds_per_unit - self.seconds_per_unit)

    def retry_after(self) -> int:
        """Seconds until the work now admitted is likely done, spread over the slots: at least 1."""
        now = time.perf_counter()
        return max(1, math.ceil(sum(self._remaining(job, now) for job in self._jobs) / self.slots))

    def _remaining(self, job: Job, now: float) -> float:
        """Seconds of ``job`` still to come: its own pace once some of its tiles are done, else its cost at the
        measured pace (less what it has run)."""
        expected = job.cost * self.seconds_per_unit
        if job.started is None:
            return expected
        elapsed = now - job.started
        fraction = min(job.done / job.windows, 1.0)
        if fraction > 0:
            return elapsed * (1 - fraction) / fraction
        return max(expected - elapsed, 0.0)
