"""A time budget: ``--time 10m`` plans a run that ends within it, validation and checkpoints included.

The plan is measured, not guessed. The run starts training at once; after ``SKIPPED_STEPS`` steps (memory
allocation, autotuning) it times the next ones (at least ``MIN_MEASURED_STEPS``, about ``MEASURE_SHARE`` of
the budget), then one validation on a few images (scaled to the whole set) and the writes of an epoch
(``last.pt``, ``best.pt``, ``curves.png``). From these ``plan_epochs`` chooses:

- the **epochs** (one validation and one checkpoint each): as many as ``OVERHEAD_SHARE`` of the time left
  pays for, at most ``epochs`` of the config, at least one;
- the **iterations per epoch** that fill the rest, up to the budget less ``END_MARGIN``.

The learning-rate schedule is then stretched to end at the plan's last iteration (``Trainer.set_schedule_length``),
so poly and cosine reach their end at the budget. After each epoch the rest of the run is planned again from
that epoch's own timings (the same epochs or fewer); halfway through the last epoch its iterations are set
once more from its own pace; and any epoch ends early once the time left only pays for its validation and
writes (then the plan after it ends the run).
So a slow start, a slower validation or a machine that got busier (or quieter) move the end by a few
iterations, not past the budget. The warm-up steps are ordinary training steps of the first epoch.

The plan is printed and written to ``plan.json`` in the run folder; ``last.pt`` keeps it with the seconds
used, so ``--resume`` continues it with what is left of the budget; resumed with another ``--time``, the
rest of the run is planned afresh for what that budget leaves (``--time`` longer: more epochs).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

    from pixelwise.train.data import Samples

SKIPPED_STEPS = 2  # the first steps allocate memory and pick kernels: not the speed of the others
MIN_MEASURED_STEPS = 5
MEASURE_SHARE = 0.03  # of the budget spent timing steps (still training), at most MEASURE_SECONDS
MEASURE_SECONDS = 10.0
OVERHEAD_SHARE = 0.2  # the most of the time left that validation and checkpoints may take
END_MARGIN = 0.02  # of the budget, left for the run's last writes and the processes' last meeting
VALIDATION_SAMPLE = 4  # images validated to time a validation (scaled to the whole set)

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h|min|sec)?", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``10m``, ``1.5h``, ``2h30m`` or a bare number of seconds.

    >>> parse_duration("90s"), parse_duration("10m"), parse_duration("2h30m"), parse_duration("45")
    (90.0, 600.0, 9000.0, 45.0)
    """
    compact = text.strip().replace(" ", "")
    parts = list(_DURATION.finditer(compact))
    if not compact or "".join(part.group(0) for part in parts) != compact:
        raise PixelwiseError(f"time {text!r}: give a duration such as 90s, 10m, 2h or 1h30m")
    seconds = sum(float(part.group(1)) * _UNITS[(part.group(2) or "").lower()] for part in parts)
    if not seconds > 0:
        raise PixelwiseError(f"time {text!r}: give a duration above zero, such as 90s, 10m or 2h")
    return seconds


def format_duration(seconds: float) -> str:
    """``90 s``, ``10 min``, ``2 h 05 min``: how the plan names a time.

    >>> format_duration(90), format_duration(600), format_duration(7500)
    ('90 s', '10 min', '2 h 05 min')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class Plan:
    """How a budgeted run spends its time; ``after_epoch`` 0 is the first plan, made after the warm-up."""

    budget: float  # seconds
    epochs: int
    iterations_per_epoch: int
    total_iterations: int  # the learning-rate schedule's length
    seconds_per_iteration: float
    seconds_per_validation: float
    seconds_per_write: float
    after_epoch: int = 0

    def line(self) -> str:
        """The plan in one line, as the run prints it."""
        if self.after_epoch == 0:
            epochs = f"{self.epochs} epochs of {self.iterations_per_epoch} iterations ({self.total_iterations} in all)"
        else:  # the rest of a run
            first, last = self.after_epoch + 1, self.epochs
            numbers = f"epoch {last}" if first == last else f"epochs {first}-{last}"
            epochs = f"{numbers} of {self.iterations_per_epoch} iterations (to iteration {self.total_iterations})"
        return (
            f"plan for {format_duration(self.budget)}: {epochs} at {self.seconds_per_iteration:.3g} s each; "
            f"validation {self.seconds_per_validation:.2g} s and checkpoints {self.seconds_per_write:.2g} s per epoch"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_epochs(*, remaining: float, done: int, step: float, overhead: float, max_epochs: int) -> tuple[int, int]:
    """(epochs, iterations per epoch) that fill ``remaining`` seconds, ``done`` iterations of the first epoch
    being already behind: each epoch costs ``overhead`` seconds besides its iterations of ``step`` seconds.

    >>> plan_epochs(remaining=100.0, done=10, step=0.1, overhead=1.0, max_epochs=30)  # 20 epochs: 20 s of 100
    (20, 40)
    >>> plan_epochs(remaining=100.0, done=0, step=0.1, overhead=0.0, max_epochs=5)
    (5, 200)
    >>> plan_epochs(remaining=1.0, done=3, step=0.5, overhead=2.0, max_epochs=30)  # no time left: one epoch
    (1, 3)
    """
    affordable = math.floor(OVERHEAD_SHARE * remaining / overhead) if overhead > 0 else max_epochs
    epochs = min(max_epochs, max(1, affordable))
    iterations = max(0.0, remaining - epochs * overhead) / max(step, 1e-9) + done
    return epochs, max(1, math.floor(iterations / epochs))


class TimeBudget:
    """The run's deadline, the warm-up's measurement and the current plan.

    ``used`` is the seconds a resumed run had already spent; the deadline is what is left of the budget.
    """

    def __init__(self, seconds: float, *, started: float, used: float = 0.0, plan: Plan | None = None) -> None:
        self.seconds = seconds
        self.started = started - used  # when the run would have started had it never stopped
        self.plan = plan
        self._measure_from: tuple[int, float] | None = None

    def resume(self, plan: Plan | None, *, used: float) -> None:
        """Go on with a resumed run's ``plan`` (None: plan the rest afresh), ``used`` seconds being spent."""
        self.plan = plan
        self.started -= used

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def used(self) -> float:
        """Seconds the run has spent, earlier sessions included."""
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        """Seconds left for training, validation and checkpoints (the end margin kept back)."""
        return self.deadline - time.perf_counter() - END_MARGIN * self.seconds

    def measured(self, step: int) -> tuple[int, float] | None:
        """After training step ``step`` of the warm-up: (steps timed, their seconds) once enough are timed,
        else None. The caller waits for the device before calling (a GPU runs ahead of Python)."""
        now = time.perf_counter()
        if step == SKIPPED_STEPS:
            self._measure_from = (step, now)
            return None
        if self._measure_from is None:
            return None
        first, since = self._measure_from
        steps, seconds = step - first, now - since
        enough_time = seconds >= min(MEASURE_SHARE * self.seconds, MEASURE_SECONDS)
        running_out = now - self.started >= 3 * MEASURE_SHARE * self.seconds
        if (steps >= MIN_MEASURED_STEPS and enough_time) or (steps >= 1 and running_out):
            return steps, seconds
        return None

    def first_plan(
        self, *, epoch: int, iteration: int, done: int, step: float, validation: float, write: float, max_epochs: int
    ) -> Plan:
        """The plan made after the warm-up of epoch ``epoch`` (0 unless a run without a plan is resumed), which
        began at ``iteration`` and has ``done`` iterations behind it, ``step`` seconds each."""
        epochs, iterations = plan_epochs(
            remaining=self.remaining(), done=done, step=step, overhead=validation + write, max_epochs=max_epochs - epoch
        )
        iterations = max(iterations, done)  # the first epoch already has ``done``
        total = iteration + epochs * iterations
        self.plan = Plan(self.seconds, epoch + epochs, iterations, total, step, validation, write, after_epoch=epoch)
        return self.plan

    def replan(self, *, epoch: int, iteration: int, step: float, validation: float, write: float) -> Plan:
        """The rest of the run after ``epoch`` epochs (``iteration`` iterations done), from that epoch's
        timings: the same epochs or fewer (none when the time is spent), their iterations filling the time left."""
        assert self.plan is not None
        left_epochs = self.plan.epochs - epoch
        remaining = self.remaining()
        if left_epochs <= 0 or remaining <= validation + write + step:
            self.plan = replace(self.plan, epochs=epoch, total_iterations=iteration, after_epoch=epoch)
            return self.plan
        epochs, iterations = plan_epochs(
            remaining=remaining, done=0, step=step, overhead=validation + write, max_epochs=left_epochs
        )
        self.plan = Plan(
            self.seconds,
            epoch + epochs,
            iterations,
            iteration + epochs * iterations,
            step,
            validation,
            write,
            after_epoch=epoch,
        )
        return self.plan


def wait_for(device: torch.device) -> None:
    """Wait until ``device`` has run what was queued (a GPU runs ahead of Python; its time is then real)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_validation(
    validate: Callable[[Samples], object],
    val: Samples | None,
    *,
    checked: Samples | None,
    check: Callable[[Samples], object] | None,
) -> float:
    """Seconds one epoch's validation takes, timed (the second time) on up to ``VALIDATION_SAMPLE`` of the
    images of ``val`` and scaled to all of them; ``check`` (the pseudo-label check on ``checked``, or None) timed the same way.
    ``validate(samples)`` is the Trainer's validation (every process calls it)."""
    from pixelwise.train.data import SubsetView

    seconds = 0.0
    timed: list[tuple[Samples | None, Callable[[Samples], object] | None]] = [(val, validate), (checked, check)]
    for samples, run in timed:
        if samples is None or run is None or len(samples) == 0:
            continue
        sample = SubsetView(samples, range(min(VALIDATION_SAMPLE, len(samples))))
        run(sample)  # once untimed: a first call's imports (scipy for the boundary scores) come once per run
        started = time.perf_counter()
        run(sample)
        seconds += (time.perf_counter() - started) * len(samples) / len(sample)
    return seconds


def time_writes(save: Callable[[Path], object]) -> float:
    """Seconds an epoch's writes take: ``save(folder)`` (``last.pt``, ``best.pt``, ``curves.png`` into a
    scratch folder) run twice, the second timed, so that a first import (matplotlib) counts once, not per epoch."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pixelwise-plan-") as scratch:
        save(Path(scratch))
        started = time.perf_counter()
        save(Path(scratch))
        return time.perf_counter() - started
