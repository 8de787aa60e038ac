"""fit(): one training run — supervised, adversarial and semi-supervised in one loop, read top to bottom.

``fit`` prepares the run folder, the data and a ``Trainer`` (``train.trainer``: the networks, optimizers
and the two updates of one iteration), then per epoch: ``iterations`` training steps, a validation on
whole images (any size: the models pad internally), ``last.pt``, ``best.pt`` when the validation mIoU
improved, ``metrics.jsonl`` and ``curves.png`` (``train.run_files``). ``resume=True`` restores every state
from ``last.pt`` (``train.state``: weights, optimizers, schedulers, RNGs, early stopping, D), so 1 epoch +
resume 1 epoch gives the same weights as 2 epochs straight.

Under ``torchrun`` every process runs this same loop; what differs is gathered in ``train.distributed``:
joining the others, which process logs and writes, how the sampler splits the data, how numbers are added
up over processes, how decisions are shared and how the networks are wrapped (DDP).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from pixelwise.checkpoint import Checkpoint
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.train.budget import (
    Plan,
    TimeBudget,
    format_duration,
    parse_duration,
)
from pixelwise.train.checkpoint import ResumeState
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import (
    LABELED_STREAM,
    REAL_STREAM,
    UNLABELED_STREAM,
    LabeledSource,
    Samples,
    boundary_sources,
    normalization,
    on_own_stream,
    run_datasets,
    split_labeled,
)
from pixelwise.train.distributed import (
    barrier,
    broadcast_from_main,
    gather,
    is_main_process,
    iterations_per_epoch,
    make_loader,
    on_main_process,
    process_seed,
    processes,
    rank,
    reduce_mean,
    share_buffers_of_main,
    world_size,
)
from pixelwise.train.holdout import validation_when_none
from pixelwise.train.loggers import SHOWN_IMAGES, Loggers, check_loggers, shown_overlays
from pixelwise.train.run_files import (
    BEST_FILE,
    CONFIG_FILE,
    LAST_FILE,
    flat_metrics,
    load_last,
    prepare_out_dir,
    summary_line,
)
from pixelwise.train.session import Session, planner, replan, write_epoch
from pixelwise.train.state import (
    RunState,
    check_resume,
    deterministic_kernels,
    restore_rng,
    rng_state,
    seed_everything,
)
from pixelwise.train.trainer import Trainer, build_trainer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What ``fit`` leaves behind: the checkpoints, the per-epoch history and how the run ended."""

    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_score: float
    stopped_early: bool


def fit(
    config: TrainConfig,
    train: LabeledSource,
    val: Samples | None = None,
    *,
    out_dir: str | os.PathLike[str],
    unlabeled: Sequence[Any] | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    loggers: Sequence[str] = (),
) -> RunResult:
    """Train a segmenter on ``train`` (a ``SegmentationFolder`` or a sequence of samples), validating on
    ``val`` each epoch, and write the run to ``out_dir``. Without ``val``, ``config.val_fraction`` of the
    training images (regions of one or two) are held out for validation (``train.holdout``).

    ``train`` items have ``.image`` (H, W, C) float32 in [0, 1] and ``.mask`` (H, W) uint8; ``train.classes``
    and ``train.in_channels`` describe them. ``unlabeled``: extra images (paths, arrays or samples) for the
    adversarial and semi-supervised terms, used with those of ``train.unlabeled_paths`` and those whose
    labels ``labeled_fraction`` hides. ``out_dir`` must be empty unless ``resume`` (continue from its
    ``last.pt``) or ``force`` (train into it anyway; files of the run's names are replaced). ``loggers``:
    names in ``train.loggers.LOGGERS`` (``tensorboard``, ``mlflow``); resumed, the run's own by default.
    """
    out = Path(out_dir)
    started = time.perf_counter()
    seconds = parse_duration(config.time) if config.time else None  # a bad value before the folder is touched
    check_loggers(loggers)
    train, val = boundary_sources(config, train, val)  # the boundary class, when asked for, is in the masks
    with (
        processes(config.device, timeout=config.process_timeout) as device,
        deterministic_kernels(config.deterministic),
    ):
        if len(train) == 0:
            raise PixelwiseError("the training set is empty; give a dataset with images and masks")
        if val is None or len(val) == 0:
            train, val = validation_when_none(config, train)
        budget = TimeBudget(seconds, started=started) if seconds is not None else None
        session = start_session(
            config, train, out=out, device=device, unlabeled=unlabeled, resume=resume, force=force, budget=budget
        )
        if is_main_process():
            shown = [val[index] for index in range(min(SHOWN_IMAGES, len(val)))] if val is not None else []
            iteration = session.trainer.iteration if resume else None
            opened = Loggers.open(loggers, out=out, config=config.to_dict(), iteration=iteration, shown=shown)
            session.loggers = opened
        try:
            epoch = session.start_epoch
            while epoch < session.epochs and not session.run.should_stop(config.patience):
                started = time.perf_counter()
                record, val_metrics = train_and_validate(session, epoch, val, progress=progress)
                record["seconds"] = round(time.perf_counter() - started, 3)
                if session.budget is not None:
                    replan(session, epoch + 1)
                end_epoch(session, record, val_metrics)
                epoch += 1
        except BaseException:
            if session.loggers is not None:
                session.loggers.close(failed=True)
            raise
        if session.loggers is not None:
            session.loggers.close()
        barrier()  # the run's files are complete when fit returns, on every process
    run = session.run
    return RunResult(
        out_dir=out,
        best_checkpoint=out / BEST_FILE,
        last_checkpoint=out / LAST_FILE,
        history=run.history,
        best_epoch=run.best_epoch,
        best_score=run.best_score,
        stopped_early=run.should_stop(config.patience),
    )


def start_session(
    config: TrainConfig,
    train: LabeledSource,
    *,
    out: Path,
    device: torch.device,
    unlabeled: Sequence[Any] | None,
    resume: bool,
    force: bool,
    budget: TimeBudget | None = None,
) -> Session:
    """The run folder checked, the Trainer built (or restored from ``last.pt``), the data, the RNGs seeded;
    with a ``budget``, a resumed run's plan goes on with what is left of it."""
    classes: ClassSpec = train.classes
    in_channels = int(train.in_channels)

    def open_run() -> tuple[Checkpoint | None, dict[str, list[float]]]:
        """The run folder checked, and what every process starts from: ``last.pt`` or the statistics."""
        prepare_out_dir(out, resume=resume, overwrite=force)
        if not resume:
            return None, normalization(config, train, in_channels)
        checkpoint = load_last(out)  # a damaged last.pt says what of the run is intact
        check_resume(checkpoint, config, classes, in_channels)
        return checkpoint, checkpoint.normalization.to_dict()

    resumed, statistics = on_main_process(open_run)
    seed_everything(config.seed)  # the same initial weights on every process
    labeled, hidden = split_labeled(len(train), config.labeled_fraction, seed=config.seed)
    steps = iterations_per_epoch(config.iterations_per_epoch, len(labeled), config.batch_size)
    state = ResumeState.from_checkpoint(resumed) if resumed is not None else None
    if budget is not None and state is not None and state.budget:
        # the same budget goes on with its plan; another one is planned afresh from here (a longer --time)
        saved = Plan(**state.budget["plan"])
        budget.resume(saved if saved.budget == budget.seconds else None, used=float(state.budget["used"]))
    plan = budget.plan if budget is not None else None
    epochs, total = (plan.epochs, plan.total_iterations) if plan else (config.epochs, config.epochs * steps)
    steps = plan.iterations_per_epoch if plan else steps
    trainer = build_trainer(
        config,
        classes=classes,
        in_channels=in_channels,
        total_iterations=total,
        device=device,
        pretrained=resumed is None,
    )
    data = run_datasets(config, train, statistics, labeled=labeled, hidden=hidden, unlabeled=unlabeled)
    session = Session(
        config=config,
        out=out,
        device=device,
        trainer=trainer,
        run=RunState(),
        start_epoch=0,
        steps=steps,
        statistics=statistics,
        in_channels=in_channels,
        data=data,
        epochs=epochs,
        budget=budget,
        input_bands=getattr(train, "input_bands", None),  # a folder's band rule (data.folder_bands)
    )
    if resumed is not None and state is not None:
        trainer.load_state(resumed)
        session.run, session.start_epoch = RunState.from_resume(state), resumed.epoch
    # augmentation (and D's label smoothing) draw from a stream of each process's own
    seed_everything(process_seed(config.seed, session.start_epoch))
    if state is not None:
        restore_rng(state.rng, rank=rank(), world_size=world_size(), device=device)
    elif is_main_process():
        config.save_yaml(out / CONFIG_FILE)
    if is_main_process():  # the others would only repeat it
        if resumed is not None:
            logger.info("resuming %s after epoch %d (iteration %d)", out, session.start_epoch, trainer.iteration)
        images = f"{config.model} on {len(train)} images ({len(labeled)} labeled)"
        if budget is not None and plan is None:
            when = f"time budget {format_duration(budget.seconds)}, planned after a short warm-up"
            logger.info("training %s, %s, device %s", images, when, device)
        else:
            logger.info("training %s, %d iterations per epoch, %d epochs, device %s", images, steps, epochs, device)
    return session


def train_and_validate(
    session: Session, epoch: int, val: Samples | None, *, progress: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One epoch's training steps, then the validation (and the pseudo-label check): the epoch's record (the
    numbers reduced over processes) and the validation's full result ({} without validation images)."""
    trainer, data = session.trainer, session.data
    started, iteration = time.perf_counter(), trainer.iteration
    sums, counts = _train_epoch(
        trainer,
        data.labeled,
        data.unlabeled,
        epoch,
        session.steps,
        progress,
        epochs=session.epochs,
        after_step=planner(session, epoch, val),
    )
    planning = session.timings.pop("planning", 0.0)
    session.timings["step"] = (time.perf_counter() - started - planning) / max(trainer.iteration - iteration, 1)
    started = time.perf_counter()
    record: dict[str, Any] = {"epoch": epoch + 1, "iteration": trainer.iteration}
    record["lr"] = trainer.optimizer.param_groups[0]["lr"]
    record.update({f"train_{key}": value for key, value in reduce_mean(sums, counts).items()})
    # validation and the checkpoint see the main process's BatchNorm statistics
    share_buffers_of_main(trainer.raw_model)
    val_metrics: dict[str, Any] = {}
    if val is not None and len(val) > 0:
        val_metrics = trainer.validate(val, data.evaluate)  # every process its share, summed
        record.update(flat_metrics(val_metrics))
    if data.checked is not None and is_main_process():  # the raw network on the main process alone
        from pixelwise.train.pseudo_labels import pseudo_label_quality

        record.update(pseudo_label_quality(trainer.networks(raw=True), data.checked, data.evaluate))
    session.timings["validation"] = time.perf_counter() - started
    return record, val_metrics


def end_epoch(session: Session, record: dict[str, Any], val_metrics: dict[str, Any]) -> None:
    """Early stopping and best.pt decided once, by the main process, for all; then it writes the run's files."""
    config, out = session.config, session.out
    main = is_main_process()
    improved = session.run.add(record, min_delta=config.min_delta) if main else False
    session.run, improved = broadcast_from_main((session.run, improved))
    rng = gather(rng_state(session.device))
    if main:
        started, trainer, loggers = time.perf_counter(), session.trainer, session.loggers
        write_epoch(session, out, record, val_metrics, rng=rng, improved=improved)
        if loggers is not None:
            classes, evaluate = trainer.classes, session.data.evaluate

            def overlays() -> dict[str, Any]:
                return shown_overlays(trainer.networks(raw=True), loggers.shown, evaluate, classes)

            loggers.log_epoch(record, step=trainer.iteration, overlays=overlays)
        session.timings["write"] = time.perf_counter() - started
        logger.info(summary_line(record, session.epochs, improved))
        for line in session.news:
            logger.info(line)
        session.news.clear()
        if session.run.should_stop(config.patience):
            run = session.run
            logger.info("stopping early: no improvement for %d epochs (best: epoch %d)", run.bad_epochs, run.best_epoch)


def _train_epoch(
    trainer: Trainer,
    labeled: Dataset[Any],
    unlabeled: Dataset[Any] | None,
    epoch: int,
    iterations: int,
    progress: bool,
    *,
    epochs: int | None = None,
    after_step: Callable[[int, int], int] | None = None,
) -> tuple[dict[str, float], dict[str, int]]:
    """``iterations`` labeled batches (one pass unless ``iterations_per_epoch`` asks for more), each with an
    unlabeled batch when there are unlabeled images and a batch of D's reals when D has them apart; every
    loader restarts when used up, and draws its augmentation from its own stream (``data.on_own_stream``).
    ``after_step(steps done, iterations)`` may change the epoch's iterations (a time budget's warm-up).

    Returns the sums and counts of each logged number over the steps (NaN never counts). They are added up
    where they are, on the device, and read once at the end: reading a GPU number waits for the GPU, and
    doing so every step keeps it from running ahead of Python.
    """
    from pixelwise.progress import progress_bar

    config = trainer.config

    def batches(dataset: Dataset[Any], stream: int) -> Iterator[Any]:
        loader = make_loader(
            dataset,
            batch_size=config.batch_size,
            seed=config.seed,
            epoch=epoch,
            stream=stream,
            num_workers=config.num_workers,
        )
        return on_own_stream(_forever(loader), seed=config.seed, stream=stream, start=trainer.iteration, rank=rank())

    labeled_batches = batches(labeled, LABELED_STREAM)
    unlabeled_batches = batches(unlabeled, UNLABELED_STREAM) if unlabeled is not None else None
    separate_reals = trainer.discriminator is not None and config.discriminator_separate_reals
    real_batches = batches(labeled, REAL_STREAM) if separate_reals else None
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, torch.Tensor] = {}
    show = progress and is_main_process()
    shown = time.perf_counter()
    description = f"epoch {epoch + 1}/{epochs or config.epochs}"
    with progress_bar(total=iterations, desc=description, unit="it", quiet=not show, leave=False) as bar:
        done = 0
        while done < iterations and (batch := next(labeled_batches, None)) is not None:
            images, masks = batch
            extra = next(unlabeled_batches) if unlabeled_batches is not None else None
            reals = next(real_batches) if real_batches is not None else None
            stats = trainer.train_step(images, masks, extra, reals)
            for key, value in stats.items():
                number = torch.as_tensor(value).detach().to(torch.float64)
                counted = ~number.isnan()
                sums[key] = sums.get(key, 0) + torch.where(counted, number, 0.0)
                counts[key] = counts.get(key, 0) + counted
            bar.update()
            done += 1
            if after_step is not None and (planned := after_step(done, iterations)) != iterations:
                iterations = bar.total = planned
            if show and time.perf_counter() - shown >= 1.0:  # the loss on the bar: one read a second at most
                bar.set_postfix_str(f"loss={float(stats['loss']):.4f}")
                shown = time.perf_counter()
    return {key: float(total) for key, total in sums.items()}, {key: int(count) for key, count in counts.items()}


def _forever(loader: DataLoader[Any]) -> Iterator[Any]:
    """Batches of ``loader`` without end; each new pass continues the loader's generator (a new order)."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            return
