"""Inference slots: at most ``slots`` run, ``queue`` more wait, the next is refused at once; work runs off the
event loop; Retry-After is the work admitted at the measured pace; a cancelled job stops or leaves the queue."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from pixelwise.serve.slots import InferenceSlots, Job, JobCancelled, ServerBusy


def test_slots_run_queue_and_refuse() -> None:
    gate = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def work(value: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(10)
        with lock:
            running -= 1
        return value * 2

    async def main() -> None:
        slots = InferenceSlots(slots=2, queue=1)
        results: dict[int, int] = {}

        async def submit(value: int) -> None:
            results[value], _ = await slots.run(Job(), work, value)

        async with anyio.create_task_group() as tasks:
            for value in range(3):
                tasks.start_soon(submit, value)
            while slots.admitted < 3:
                await anyio.sleep(0.001)
            assert slots.running == 2  # two run, one waits
            # the event loop is free while they work: this coroutine runs
            with pytest.raises(ServerBusy) as refused:
                await slots.run(Job(), work, 99)
            assert refused.value.retry_after >= 1
            # both admitted works reach their thread before the gate opens (a loaded machine starts threads late)
            deadline = time.monotonic() + 10
            while most < 2 and time.monotonic() < deadline:
                await anyio.sleep(0.001)
            gate.set()
        assert results == {0: 0, 1: 2, 2: 4}
        assert slots.admitted == 0 and slots.running == 0
        _, waited = await slots.run(Job(), work, 5)
        assert waited >= 0

    anyio.run(main)
    assert most == 2


def test_retry_after_is_the_work_admitted_at_the_measured_pace() -> None:
    gate = threading.Event()

    def tiles(job: Job, count: int) -> None:
        for _ in range(count):
            job.tiles_done(1)
            gate.wait(10)

    async def main() -> None:
        slots = InferenceSlots(slots=1, queue=2)
        assert slots.retry_after() == 1  # nothing admitted: never 0, "retry now" would bring the storm straight back
        await slots.run(Job(cost=10), time.sleep, 0.05)
        # measured: 0.05 s for 10 units of cost (tiles × passes)
        assert slots.seconds_per_unit == pytest.approx(0.005, abs=0.003)
        slots.seconds_per_unit = 0.05  # a known pace from here on
        running = Job(cost=20, windows=20)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(slots.run, running, tiles, running, 20)
            tasks.start_soon(slots.run, Job(cost=40), time.sleep, 0)
            tasks.start_soon(slots.run, Job(cost=40), time.sleep, 0)
            while running.done < 1 or slots.admitted < 3:
                await anyio.sleep(0.001)
            # two waiting jobs of 40 units at 0.05 s = 4 s, and the running one's rest by its own pace
            started = running.started
            assert started is not None
            elapsed = time.perf_counter() - started
            expected = 4 + elapsed * 19
            assert slots.retry_after() in (int(expected) + 1, int(expected) + 2)
            with pytest.raises(ServerBusy) as refused:
                await slots.run(Job(), time.sleep, 0)
            assert refused.value.retry_after >= 5
            gate.set()
        assert slots.admitted == 0


def test_a_cancelled_job_stops_at_its_next_batch_and_a_waiting_one_leaves_the_queue() -> None:
    gate = threading.Event()
    batches: list[int] = []

    def predict(job: Job) -> None:
        for batch in range(100):
            gate.wait(10)
            batches.append(batch)
            job.tiles_done(1)

    async def main() -> None:
        slots = InferenceSlots(slots=1, queue=1)
        running, waiting = Job(cost=100, windows=100), Job()
        outcomes: dict[str, BaseException] = {}
        scopes: dict[str, anyio.CancelScope] = {}

        async def submit(name: str, job: Job) -> None:
            with anyio.CancelScope() as scopes[name]:
                try:
                    await slots.run(job, predict, job)
                except JobCancelled as error:
                    outcomes[name] = error

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(submit, "running", running)
            tasks.start_soon(submit, "waiting", waiting)
            while running.started is None or slots.admitted < 2:
                await anyio.sleep(0.001)
            scopes["waiting"].cancel()  # the request that waits is cancelled (its client left): out of the queue
            while slots.admitted > 1:
                await anyio.sleep(0.001)
            running.cancel()
            gate.set()
        assert isinstance(outcomes["running"], JobCancelled)
        assert len(batches) == 1  # the batch running when it was cancelled, no more
        assert "waiting" not in outcomes and waiting.started is None  # it never ran
        assert slots.admitted == 0 and slots.running == 0

    anyio.run(main)
