"""A fixed number of inference slots with a short queue before them: CPU-bound work that sheds load.

Each inference runs in a worker thread, never on the event loop, at most ``slots`` at a time. Up to
``queue`` more requests wait for a slot; a request beyond that is refused at once (:class:`ServerBusy`,
answered 503 with Retry-After) rather than queued without bound: a CPU-bound model serves a fixed rate,
and a longer queue only makes every answer later. Memory is bounded the same way: an image is decoded
inside its slot, so at most ``slots`` images are in memory as pixels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

Result = TypeVar("Result")

# weight of the newest inference in the running mean of inference times (for Retry-After)
_SMOOTHING = 0.2


class ServerBusy(Exception):
    """Every slot is working and the queue is full; ``retry_after`` is a fair wait in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"every inference slot is busy and the queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class InferenceSlots:
    """``slots`` worker threads' worth of inference and a queue of ``queue`` waiting requests.

    Create it inside the running event loop (the app's lifespan): its limiter belongs to that loop.
    """

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self.admitted = 0  # running + waiting; touched on the event loop only, so no lock
        self.mean_seconds = 1.0
        self._limiter = anyio.CapacityLimiter(slots)

    @property
    def running(self) -> int:
        return int(self._limiter.borrowed_tokens)

    async def run(self, function: Callable[..., Result], *args: object) -> tuple[Result, float]:
        """``function(*args)`` in a worker thread once a slot is free, and the seconds it waited for it.

        Raises :class:`ServerBusy` at once when the slots and the queue are full. A cancelled request
        (a client gone) still lets its running inference finish, so the count stays true.
        """
        if self.admitted >= self.slots + self.queue:
            raise ServerBusy(self.retry_after())
        self.admitted += 1
        arrived = time.perf_counter()
        started = finished = 0.0

        def timed() -> Result:
            nonlocal started, finished
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                finished = time.perf_counter()

        try:
            result = await anyio.to_thread.run_sync(timed, limiter=self._limiter)
        finally:
            self.admitted -= 1
            if finished:
                self.mean_seconds += _SMOOTHING * (finished - started - self.mean_seconds)
        return result, started - arrived

    def retry_after(self) -> int:
        """Seconds until the work now admitted is likely done: one slot's share of it, at least 1."""
        return max(1, math.ceil(self.mean_seconds * self.admitted / self.slots))
