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

import itertools
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from pixelwise.checkpoint import Checkpoint, save_checkpoint
from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import evaluation_transform, training_transform, weak_and_strong_transform
from pixelwise.errors import PixelwiseError
from pixelwise.metrics import json_ready
from pixelwise.train.checkpoint import ResumeState
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import (
    LABELED_STREAM,
    REAL_STREAM,
    UNLABELED_STREAM,
    LabeledCrops,
    LabeledSource,
    Samples,
    SubsetView,
    boundary_sources,
    normalization,
    on_own_stream,
    split_labeled,
    unlabeled_dataset,
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
from pixelwise.train.run_files import (
    BEST_FILE,
    CONFIG_FILE,
    CURVES_FILE,
    LAST_FILE,
    METRICS_FILE,
    load_last,
    plot_curves,
    prepare_out_dir,
    write_history,
)
from pixelwise.train.state import (
    RunState,
    check_resume,
    deterministic_kernels,
    prediction_checkpoint,
    restore_rng,
    resume_checkpoint,
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
) -> RunResult:
    """Train a segmenter on ``train`` (a ``SegmentationFolder`` or a sequence of samples), validating on
    ``val`` each epoch, and write the run to ``out_dir``.

    ``train`` items have ``.image`` (H, W, C) float32 in [0, 1] and ``.mask`` (H, W) uint8; ``train.classes``
    and ``train.in_channels`` describe them. ``unlabeled``: extra images (paths, arrays or samples) for the
    adversarial and semi-supervised terms, used with those of ``train.unlabeled_paths`` and those whose
    labels ``labeled_fraction`` hides. ``out_dir`` must be empty unless ``resume`` (continue from its
    ``last.pt``) or ``force`` (train into it anyway; files of the run's names are replaced).
    """
    out = Path(out_dir)
    train, val = boundary_sources(config, train, val)  # the boundary class, when asked for, is in the masks
    with (
        processes(config.device, timeout=config.process_timeout) as device,
        deterministic_kernels(config.deterministic),
    ):
        main = is_main_process()
        classes: ClassSpec = train.classes
        in_channels = int(train.in_channels)
        if len(train) == 0:
            raise PixelwiseError("the training set is empty; give a dataset with images and masks")

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
        trainer = build_trainer(
            config,
            classes=classes,
            in_channels=in_channels,
            total_iterations=config.epochs * steps,
            device=device,
            pretrained=resumed is None,
        )

        # the data
        augmentation: dict[str, Any] = {
            "crop_size": config.crop_size,
            "mean": statistics["mean"],
            "std": statistics["std"],
            "ignore_index": classes.ignore_index,
            "scale_range": config.scale_range,
            "rotation": config.rotation,
            "horizontal_flip": config.horizontal_flip,
            "vertical_flip": config.vertical_flip,
            "color_jitter": config.color_jitter,
        }
        augment = training_transform(**augmentation)
        evaluate = evaluation_transform(
            mean=statistics["mean"], std=statistics["std"], ignore_index=classes.ignore_index
        )
        labeled_data = LabeledCrops(train, labeled, augment)
        # FixMatch's crops come with a strong view of themselves
        unlabeled_augment = weak_and_strong_transform(**augmentation) if config.fixmatch_weight > 0 else augment
        unlabeled_data = (
            unlabeled_dataset(config, train, hidden, unlabeled, unlabeled_augment, in_channels)
            if config.uses_unlabeled
            else None
        )
        # the images whose labels are hidden score the pseudo-labels each epoch (a bounded, fixed sample)
        wanted = config.pseudo_label_check_images
        checked = hidden[:: -(-len(hidden) // wanted)] if wanted and hidden else []

        # where the run stands
        run, start_epoch = RunState(), 0
        if resumed is not None:
            trainer.load_state(resumed)
            run, start_epoch = RunState.from_resume(ResumeState.from_checkpoint(resumed)), resumed.epoch
        # augmentation (and D's label smoothing) draw from a stream of each process's own
        seed_everything(process_seed(config.seed, start_epoch))
        if resumed is not None:
            restore_rng(ResumeState.from_checkpoint(resumed).rng, rank=rank(), world_size=world_size(), device=device)
        elif main:
            config.save_yaml(out / CONFIG_FILE)
        if main:  # the others would only repeat it
            if resumed is not None:
                logger.info("resuming %s after epoch %d (iteration %d)", out, start_epoch, trainer.iteration)
            logger.info(
                "training %s on %d images (%d labeled), %d iterations per epoch, %d epochs, device %s",
                config.model,
                len(train),
                len(labeled),
                steps,
                config.epochs,
                device,
            )

        for epoch in range(start_epoch, config.epochs):
            if run.should_stop(config.patience):
                break
            started = time.perf_counter()
            sums, counts = _train_epoch(trainer, labeled_data, unlabeled_data, epoch, steps, progress)
            record: dict[str, Any] = {"epoch": epoch + 1, "iteration": trainer.iteration}
            record["lr"] = trainer.optimizer.param_groups[0]["lr"]
            record.update({f"train_{key}": value for key, value in reduce_mean(sums, counts).items()})
            # validation and the checkpoint see the main process's BatchNorm statistics
            share_buffers_of_main(trainer.raw_model)
            val_metrics: dict[str, Any] = {}
            if val is not None and len(val) > 0:
                val_metrics = trainer.validate(val, evaluate)  # every process its share, summed
                record.update(_flat_metrics(val_metrics))
            if checked and main:  # the raw network on the main process alone: no collective inside
                from pixelwise.train.pseudo_labels import pseudo_label_quality

                record.update(pseudo_label_quality(trainer, SubsetView(train, checked), evaluate))
            record["seconds"] = round(time.perf_counter() - started, 3)
            # early stopping and best.pt decided once, by the main process, for all
            improved = run.add(record, min_delta=config.min_delta) if main else False
            run, improved = broadcast_from_main((run, improved))
            rng = gather(rng_state(device))

            if main:
                metrics = json_ready(val_metrics or {"train_loss": record.get("train_loss")})
                saved = {
                    "epoch": epoch + 1,
                    "metrics": metrics,
                    "normalization": statistics,
                    "in_channels": in_channels,
                    "input_bands": getattr(train, "input_bands", None),  # a folder's band rule (data.bands)
                }
                save_checkpoint(out / LAST_FILE, resume_checkpoint(trainer, run, rng=rng, **saved))
                if improved:
                    save_checkpoint(out / BEST_FILE, prediction_checkpoint(trainer, **saved))
                write_history(out / METRICS_FILE, run.history)
                plot_curves(run.history, out / CURVES_FILE)
                logger.info(_summary(record, config.epochs, improved))
            if run.should_stop(config.patience) and main:
                logger.info(
                    "stopping early: no improvement for %d epochs (best: epoch %d)", run.bad_epochs, run.best_epoch
                )
        barrier()  # the run's files are complete when fit returns, on every process

    return RunResult(
        out_dir=out,
        best_checkpoint=out / BEST_FILE,
        last_checkpoint=out / LAST_FILE,
        history=run.history,
        best_epoch=run.best_epoch,
        best_score=run.best_score,
        stopped_early=run.should_stop(config.patience),
    )


def _train_epoch(
    trainer: Trainer,
    labeled: Dataset[Any],
    unlabeled: Dataset[Any] | None,
    epoch: int,
    iterations: int,
    progress: bool,
) -> tuple[dict[str, float], dict[str, int]]:
    """``iterations`` labeled batches (one pass unless ``iterations_per_epoch`` asks for more), each with an
    unlabeled batch when there are unlabeled images and a batch of D's reals when D has them apart; every
    loader restarts when used up, and draws its augmentation from its own stream (``data.on_own_stream``).

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
    with progress_bar(
        total=iterations, desc=f"epoch {epoch + 1}/{config.epochs}", unit="it", quiet=not show, leave=False
    ) as bar:
        for images, masks in itertools.islice(labeled_batches, iterations):
            extra = next(unlabeled_batches) if unlabeled_batches is not None else None
            reals = next(real_batches) if real_batches is not None else None
            stats = trainer.train_step(images, masks, extra, reals)
            for key, value in stats.items():
                number = torch.as_tensor(value).detach().to(torch.float64)
                counted = ~number.isnan()
                sums[key] = sums.get(key, 0) + torch.where(counted, number, 0.0)
                counts[key] = counts.get(key, 0) + counted
            bar.update()
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


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar validation metrics as ``val_<name>``, plus the per-class IoU."""
    settings = {"boundary_tolerance", "ignore_index", "num_pixels"}
    flat: dict[str, Any] = {
        f"val_{key}": value for key, value in metrics.items() if isinstance(value, (int, float)) and key not in settings
    }
    per_class = metrics.get("per_class", {})
    flat["val_iou"] = {name: scores["iou"] for name, scores in per_class.items()}
    return flat


def _summary(record: dict[str, Any], epochs: int, improved: bool) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record.get('train_loss', float('nan')):.4f}"]
    if "val_miou" in record:
        parts.append(f"val mIoU {record['val_miou']:.4f}")
    if "train_discriminator_loss" in record:
        parts.append(
            f"D loss real/predicted {record['train_discriminator_loss_real']:.3f}/"
            f"{record['train_discriminator_loss_fake']:.3f} "
            f"(acc. {record['train_discriminator_accuracy_real']:.2f}/"
            f"{record['train_discriminator_accuracy_fake']:.2f})"
        )
    for key, name in (("train_semi_fraction", "trusted"), ("train_fixmatch_fraction", "FixMatch trusted")):
        if key in record:
            parts.append(f"{name} {record[key]:.2f}")
    if "pseudo_accuracy_trusted" in record:
        parts.append(
            f"pseudo-label acc. trusted/untrusted {record['pseudo_accuracy_trusted']:.2f}/"
            f"{record['pseudo_accuracy_untrusted']:.2f}"
        )
        aurocs = [
            f"{record[key]:.2f}" for key in ("pseudo_auroc_discriminator", "pseudo_auroc_softmax") if key in record
        ]
        parts.append(f"AUROC {'D/softmax' if len(aurocs) == 2 else 'softmax'} {'/'.join(aurocs)}")
    parts.append(f"{record['seconds']:.1f} s")
    return ", ".join(parts) + (" *" if improved else "")
