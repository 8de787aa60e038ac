"""One process's share of a run once it is set up (``Session``), an epoch's files, and how a run follows a
time budget (``train.budget``): the warm-up's timing and first plan, and the plan made again after each epoch.

``loop.fit`` makes the session (``loop.start_session``) and calls these between its steps.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixelwise.checkpoint import save_checkpoint
from pixelwise.data.bands import InputBands
from pixelwise.metrics import json_ready
from pixelwise.train.budget import MIN_MEASURED_STEPS, Plan, TimeBudget, time_validation, time_writes, wait_for
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import RunData, Samples
from pixelwise.train.distributed import broadcast_from_main, is_main_process
from pixelwise.train.loggers import Loggers
from pixelwise.train.run_files import (
    BEST_FILE,
    CURVES_FILE,
    LAST_FILE,
    METRICS_FILE,
    PLAN_FILE,
    plot_curves,
    write_history,
    write_plan,
)
from pixelwise.train.state import RunState, prediction_checkpoint, resume_checkpoint, rng_state
from pixelwise.train.trainer import Trainer

logger = logging.getLogger(__name__)

SAFETY = 1.25  # the last epoch ends when the time left pays for this many times its validation and writes


@dataclass
class Session:
    """One process's share of a run once it is set up: what every epoch uses, and where the run stands."""

    config: TrainConfig
    out: Path
    device: torch.device
    trainer: Trainer
    run: RunState  # the history and the early-stopping counters (the main process decides, all hold it)
    start_epoch: int  # epochs done before this session (resuming)
    steps: int  # iterations per epoch (per process)
    statistics: dict[str, list[float]]  # the input normalisation, {"mean", "std"} per channel
    in_channels: int
    data: RunData
    epochs: int  # the config's, or a time budget's plan
    budget: TimeBudget | None = None  # with ``time``: the deadline and the plan
    loggers: Loggers | None = None  # TensorBoard, MLflow (the main process's; None elsewhere)
    input_bands: InputBands | None = None  # how the training images were read (data.bands), for the checkpoint
    news: list[str] = field(default_factory=list)  # lines the main process says after the epoch's own
    timings: dict[str, float] = field(default_factory=dict)  # the last epoch's seconds: train, validation, write


def write_epoch(
    session: Session,
    out: Path,
    record: dict[str, Any],
    val_metrics: dict[str, Any],
    *,
    rng: list[dict[str, Any]],
    improved: bool,
) -> None:
    """``last.pt``, ``best.pt`` (when ``improved``), ``metrics.jsonl`` and ``curves.png`` into ``out``."""
    trainer = session.trainer
    saved = {
        "epoch": record["epoch"],
        "metrics": json_ready(val_metrics or {"train_loss": record.get("train_loss")}),
        "normalization": session.statistics,
        "in_channels": session.in_channels,
        "input_bands": session.input_bands,
    }
    budget = session.budget
    spent = {"plan": budget.plan.to_dict(), "used": budget.used()} if budget and budget.plan else None
    save_checkpoint(out / LAST_FILE, resume_checkpoint(trainer, session.run, rng=rng, budget=spent, **saved))
    if improved:
        save_checkpoint(out / BEST_FILE, prediction_checkpoint(trainer, **saved))
    write_history(out / METRICS_FILE, session.run.history)
    plot_curves(session.run.history or [{**record, "epoch": 1}], out / CURVES_FILE)


def planner(session: Session, epoch: int, val: Samples | None) -> Callable[[int, int], int] | None:
    """What runs after each training step of a budgeted run: while there is no plan, the warm-up's timing,
    then the first plan; in the plan's last epoch, ``last_steps``. Every process takes the main one's decisions."""
    budget = session.budget
    if budget is None:
        return None
    trainer, data, begun = session.trainer, session.data, session.trainer.iteration
    pace = {"since": time.perf_counter(), "from": 0, "corrected": 0}  # where this epoch's own timing starts

    def after_step(done: int, iterations: int) -> int:
        if budget.plan is not None:
            if epoch + 1 < session.epochs:
                # the plan made again after this epoch corrects it, unless the machine slowed so much that
                # the time is spent before the epoch ends: then it ends here and the plan after it ends the run
                return broadcast_from_main(done if out_of_time(session) else iterations)
            return broadcast_from_main(last_steps(session, done, iterations, begun=begun, pace=pace))
        wait_for(session.device)
        timed = broadcast_from_main(budget.measured(done))
        if timed is None:
            return max(iterations, done + 1)  # the warm-up goes on
        started = time.perf_counter()

        def check(samples: Samples) -> object:
            from pixelwise.train.pseudo_labels import pseudo_label_quality

            return pseudo_label_quality(trainer.networks(raw=True), samples, data.evaluate)

        validation = time_validation(
            lambda samples: trainer.validate(samples, data.evaluate),
            val,
            checked=data.checked if is_main_process() else None,
            check=check,
        )
        write = 0.0
        if is_main_process():  # the only one that writes
            rng, record = [rng_state(session.device)], {"epoch": epoch + 1, "iteration": trainer.iteration}
            write = time_writes(lambda folder: write_epoch(session, folder, record, {}, rng=rng, improved=True))
        step = timed[1] / timed[0]
        plan = budget.first_plan(
            epoch=epoch,
            iteration=begun,
            done=done,
            step=step,
            validation=validation,
            write=write,
            max_epochs=session.epochs,
        )
        follow(session, broadcast_from_main(plan), first=True)
        session.timings["planning"] = time.perf_counter() - started
        pace.update(since=time.perf_counter(), start=done)
        return session.steps

    return after_step


def last_steps(session: Session, done: int, iterations: int, *, begun: int, pace: dict[str, float]) -> int:
    """The iterations of the plan's last epoch after ``done`` of them: halfway through, once, set again from
    this epoch's own pace (and the schedule's length with them), so the run ends at the budget whether the
    machine got slower or faster than the warm-up said; and at any step, ``done`` when the time left only
    pays for a step, the validation and the writes (with ``SAFETY``'s room)."""
    budget = session.budget
    assert budget is not None and budget.plan is not None
    if out_of_time(session):
        return done
    overhead = epoch_overhead(session)
    remaining = budget.remaining()
    paced = done - int(pace.get("start", 0))
    if pace["corrected"] or paced < MIN_MEASURED_STEPS or done < iterations // 2:
        return iterations
    pace["corrected"] = 1
    wait_for(session.device)
    step = (time.perf_counter() - pace["since"]) / paced
    planned = done + max(0, math.floor((remaining - overhead) / max(step, 1e-9)))
    session.steps = planned
    session.trainer.set_schedule_length(begun + planned)
    return planned


def epoch_overhead(session: Session) -> float:
    """Seconds an epoch's validation and writes take: the larger of the plan's and the last epoch's."""
    budget, timings = session.budget, session.timings
    assert budget is not None and budget.plan is not None
    measured = timings.get("validation", 0.0) + timings.get("write", 0.0)
    return max(measured, budget.plan.seconds_per_validation + budget.plan.seconds_per_write)


def out_of_time(session: Session) -> bool:
    """Whether the time left pays only for one more step, the validation and the writes (with ``SAFETY``'s room)."""
    budget = session.budget
    assert budget is not None and budget.plan is not None
    return budget.remaining() < budget.plan.seconds_per_iteration + SAFETY * epoch_overhead(session)


def replan(session: Session, epochs_done: int) -> None:
    """After an epoch of a budgeted run: the rest planned again from that epoch's timings (the main one's)."""
    budget, timings = session.budget, session.timings
    assert budget is not None
    if budget.plan is None:
        return
    plan = budget.replan(
        epoch=epochs_done,
        iteration=session.trainer.iteration,
        step=timings["step"],
        validation=timings["validation"],
        write=timings.get("write", budget.plan.seconds_per_write),
    )
    follow(session, broadcast_from_main(plan))


def follow(session: Session, plan: Plan, *, first: bool = False) -> None:
    """Take ``plan``: the epochs, their iterations, the schedule's length; the main process writes it, and
    says it when it is the ``first`` or its epochs changed."""
    changed = session.epochs != plan.epochs
    assert session.budget is not None
    session.budget.plan = plan
    session.steps, session.epochs = plan.iterations_per_epoch, plan.epochs
    session.trainer.set_schedule_length(plan.total_iterations)
    if is_main_process():
        write_plan(session.out / PLAN_FILE, plan)
        if first:
            logger.info(plan.line())
        elif changed:  # said after the epoch's line
            session.news.append(f"after epoch {plan.after_epoch}, the {plan.line()}")
