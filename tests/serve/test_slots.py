"""Inference slots: at most ``slots`` run, ``queue`` more wait, the next is refused at once; work runs off the
event loop."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from pixelwise.serve.slots import InferenceSlots, ServerBusy


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
            results[value], _ = await slots.run(work, value)

        async with anyio.create_task_group() as tasks:
            for value in range(3):
                tasks.start_soon(submit, value)
            while slots.admitted < 3:
                await anyio.sleep(0.001)
            assert slots.running == 2  # two run, one waits
            # the event loop is free while they work: this coroutine runs
            with pytest.raises(ServerBusy) as refused:
                await slots.run(work, 99)
            assert refused.value.retry_after >= 1
            # both admitted works reach their thread before the gate opens (a loaded machine starts threads late)
            deadline = time.monotonic() + 10
            while most < 2 and time.monotonic() < deadline:
                await anyio.sleep(0.001)
            gate.set()
        assert results == {0: 0, 1: 2, 2: 4}
        assert slots.admitted == 0 and slots.running == 0
        _, waited = await slots.run(work, 5)
        assert waited >= 0

    anyio.run(main)
    assert most == 2


def test_retry_after_follows_the_work_admitted() -> None:
    async def main() -> InferenceSlots:
        slots = InferenceSlots(slots=1, queue=0)
        await slots.run(time.sleep, 0.05)
        return slots

    slots = anyio.run(main)
    # the running mean moved a fifth of the way from its 1 s start towards the ≈ 0.05 s measured
    assert slots.mean_seconds == pytest.approx(0.81, abs=0.03)
    slots.admitted = 3
    assert slots.retry_after() == 3  # three inferences of ≈ 0.81 s on one slot
    slots.admitted = 0
    assert slots.retry_after() == 1  # never 0: "retry now" would bring the storm straight back
