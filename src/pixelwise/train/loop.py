"""fit(): the training loop — supervised, adversarial and semi-supervised in one, read top to bottom.

One iteration (Hung et al. 2018, see docs/design.md and methods.md section 3):

1. **Segmenter S**, with the discriminator D frozen: ``L = loss(S(X), Y) + λ_adv · BCE(D(P), 1)`` on a
   labeled batch, then on an unlabeled batch ``λ_adv,u · BCE(D(P_u), 1) + λ_semi · CE(S(X_u), argmax P_u)``
   over the pixels D trusts (``σ(D(P_u)) > T_semi``, from iteration ``semi_start`` on). One optimizer step.
2. **Discriminator D**: ``BCE(D(Y1), 1) + BCE(D(P.detach()), 0)`` on the labeled batch. One optimizer step.

With ``adversarial_weight = semi_weight = 0`` there is no D and step 1 is plain supervised training.

Each epoch ends with a validation on whole images (any size: the models pad internally), ``last.pt``,
``best.pt`` when the validation mIoU improved, ``metrics.jsonl`` and ``curves.png``. ``resume=True``
restores every state from ``last.pt`` (weights, optimizers, schedulers, RNGs, early stopping, D), so
1 epoch + resume 1 epoch gives the same weights as 2 epochs straight.

The loop is written for one process. What a ``torchrun`` (DDP) version changes is gathered in the few
helpers under "distributed seam": which process logs and writes, how the sampler splits the data, and how
per-process numbers are averaged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, RandomSampler

from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import PairedTransform, evaluation_transform, training_transform
from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_path
from pixelwise.losses import LossFunction, make_loss
from pixelwise.metrics import json_ready
from pixelwise.train.checkpoint import library_versions, load_checkpoint, save_checkpoint
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import (
    LabeledCrops,
    LabeledSource,
    Samples,
    SubsetView,
    UnlabeledCrops,
    channel_statistics,
    seed_worker,
    split_labeled,
)

logger = logging.getLogger("pixelwise.train")

T = TypeVar("T")

CONFIG_FILE = "config.yaml"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


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


# --- distributed seam ------------------------------------------------------------------------------------
# Today one process; under torchrun these are the only places that need to know about the others.


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def is_main_process() -> bool:
    """True on the process that logs, shows progress and writes files (rank 0; the only one without DDP)."""
    return not _distributed() or torch.distributed.get_rank() == 0


def reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average per-process numbers over all processes (identity with one process)."""
    if not _distributed() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    tensor /= torch.distributed.get_world_size()
    return dict(zip(keys, tensor.tolist(), strict=True))


def broadcast_from_main(value: T) -> T:
    """The main process's ``value`` on every process (validation runs on the main process only)."""
    if not _distributed():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def make_loader(
    dataset: Dataset[Any], *, batch_size: int, seed: int, epoch: int, stream: int, num_workers: int
) -> DataLoader[Any]:
    """A shuffling loader whose order and augmentation depend only on (seed, epoch, stream).

    A fresh generator per epoch makes epoch ``e`` the same whether the run got there straight or through a
    resume. Under DDP the sampler becomes a ``DistributedSampler`` with ``set_epoch(epoch)``.
    """
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0]))
    # drop the last partial batch (BatchNorm dislikes tiny batches), unless that would leave no batch at all
    drop_last = len(dataset) >= batch_size  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=RandomSampler(dataset, generator=generator),  # type: ignore[arg-type]
        drop_last=drop_last,
        num_workers=num_workers,
        worker_init_fn=seed_worker if num_workers else None,
        generator=generator,
        persistent_workers=False,
    )


# --- the steps -------------------------------------------------------------------------------------------


@dataclass
class Trainer:
    """The networks, optimizers and loss of one run, and the two updates of one iteration.

    Batches: images (N, C, h, w) float32 standardised, masks (N, h, w) int64 with ``ignore_index``;
    unlabeled images (M, C, h, w) with a validity map (M, h, w) (``ignore_index`` on padding).
    """

    config: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_function: LossFunction
    classes: ClassSpec
    device: torch.device
    discriminator: nn.Module | None = None
    discriminator_optimizer: torch.optim.Optimizer | None = None
    discriminator_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))
    discriminator_scaler: torch.amp.GradScaler = field(
        default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False)
    )
    iteration: int = 0

    # one iteration -------------------------------------------------------------------------------------

    def train_step(
        self, images: Tensor, masks: Tensor, unlabeled: tuple[Tensor, Tensor] | None = None
    ) -> dict[str, float]:
        """S's update, then D's (if any); returns the numbers to log for this iteration."""
        stats, probabilities = self.segmenter_step(images, masks, unlabeled)
        if self.discriminator is not None and probabilities is not None:
            stats.update(self.discriminator_step(images, masks, probabilities))
        self.iteration += 1
        return stats

    def segmenter_step(
        self, images: Tensor, masks: Tensor, unlabeled: tuple[Tensor, Tensor] | None = None
    ) -> tuple[dict[str, float], Tensor | None]:
        """Update S once with D frozen; returns the stats and P = softmax(S(X)) detached (for D's step)."""
        config, discriminator = self.config, self.discriminator
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        images, masks = self._to_device(images), masks.to(self.device)
        stats: dict[str, float] = {}
        probabilities: Tensor | None = None
        # D's parameters require no gradient inside: S's losses flow *through* D into P, never into D
        with frozen_parameters(discriminator):
            with self._autocast():
                logits = self.model(images)
                supervised = self.loss_function(logits, masks)
            loss = supervised
            stats["supervised_loss"] = supervised.item()
            if discriminator is not None:
                probabilities = logits.float().softmax(dim=1)
                if config.adversarial_weight > 0:
                    from pixelwise.adversarial.objectives import adversarial_loss

                    with self._autocast():
                        fake = discriminator(probabilities, *self._image_condition(images))
                    adversarial = adversarial_loss(fake.float(), masks != self.classes.ignore_index)
                    loss = loss + config.adversarial_weight * adversarial
                    stats["adversarial_loss"] = adversarial.item()
            self.scaler.scale(loss).backward()
            total = loss.item()
            if unlabeled is not None and discriminator is not None and self._wants_unlabeled():
                unlabeled_loss, unlabeled_stats = self._unlabeled_loss(*unlabeled)
                self.scaler.scale(unlabeled_loss).backward()
                total += unlabeled_loss.item()
                stats.update(unlabeled_stats)
        stats["loss"] = total
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return stats, None if probabilities is None else probabilities.detach()

    def discriminator_step(self, images: Tensor, masks: Tensor, probabilities: Tensor) -> dict[str, float]:
        """Update D once on the one-hot truth (real) and S's detached prediction (fake); S is not touched."""
        from pixelwise.adversarial.objectives import (
            discriminator_accuracy,
            discriminator_loss,
            one_hot,
            smooth_one_hot,
        )

        assert self.discriminator is not None and self.discriminator_optimizer is not None
        self.discriminator.train()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        images, masks = self._to_device(images), masks.to(self.device)
        real, valid = one_hot(masks, self.classes.num_classes, ignore_index=self.classes.ignore_index)
        if self.config.discriminator_real_smoothing > 0:
            # D must not win by spotting exact zeros and ones; the draw uses the global RNG, saved in last.pt
            real = smooth_one_hot(real, valid, amount=self.config.discriminator_real_smoothing)
        condition = self._image_condition(images)
        with self._autocast():
            real_logits = self.discriminator(real, *condition).float()
            fake_logits = self.discriminator(probabilities.detach(), *condition).float()
        loss = discriminator_loss(real_logits, fake_logits, valid, real_label=self.config.discriminator_real_label)
        self.discriminator_scaler.scale(loss).backward()
        self.discriminator_scaler.step(self.discriminator_optimizer)
        self.discriminator_scaler.update()
        if self.discriminator_scheduler is not None:
            self.discriminator_scheduler.step()
        accuracy_real, accuracy_fake = discriminator_accuracy(real_logits.detach(), fake_logits.detach(), valid)
        return {
            "discriminator_loss": loss.item(),
            "discriminator_accuracy_real": accuracy_real,
            "discriminator_accuracy_fake": accuracy_fake,
        }

    def _wants_unlabeled(self) -> bool:
        config = self.config
        adversarial = config.adversarial_weight > 0 and config.adversarial_weight_unlabeled > 0
        return adversarial or self._semi_active()

    def _semi_active(self) -> bool:
        return self.config.semi_weight > 0 and self.iteration >= self.config.semi_start

    def _unlabeled_loss(self, images: Tensor, validity: Tensor) -> tuple[Tensor, dict[str, float]]:
        """λ_adv,u · BCE(D(P_u), 1) + λ_semi · CE(S(X_u), argmax P_u) on trusted pixels; padding never counts."""
        from pixelwise.adversarial.objectives import adversarial_loss, semi_supervised_loss, trusted_pixels

        assert self.discriminator is not None
        config = self.config
        images = self._to_device(images)
        # pixels made up by padding or rotation are never trusted, and never count in the trusted share
        valid = validity.to(self.device) != self.classes.ignore_index
        with self._autocast():
            logits = self.model(images)
            d_logits = self.discriminator(logits.float().softmax(dim=1), *self._image_condition(images)).float()
        loss = logits.sum() * 0.0
        stats: dict[str, float] = {}
        if config.adversarial_weight > 0 and config.adversarial_weight_unlabeled > 0:
            adversarial = adversarial_loss(d_logits, valid)
            loss = loss + config.adversarial_weight_unlabeled * adversarial
            stats["unlabeled_adversarial_loss"] = adversarial.item()
        if self._semi_active():
            semi, fraction = semi_supervised_loss(
                logits.float(), d_logits.detach(), valid, threshold=config.semi_threshold
            )
            loss = loss + config.semi_weight * semi
            stats["semi_loss"] = semi.item()
        else:  # logged all the same: how far D is from trusting S before the term starts
            _, fraction = trusted_pixels(d_logits.detach(), valid, threshold=config.semi_threshold)
        stats["semi_fraction"] = fraction
        return loss, stats

    # evaluation ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def validate(self, dataset: Samples, transform: PairedTransform) -> dict[str, Any]:
        """Metrics of ``pixelwise.metrics.Evaluator`` on whole images, plus the mean loss per image.

        Consecutive images of the same size go through the network together, up to ``batch_size``.
        """
        from pixelwise.metrics import Evaluator

        self.model.eval()
        evaluator = Evaluator(self.classes)
        losses: list[float] = []
        for batch in _same_size_batches(dataset, self.config.batch_size):
            pairs = [transform(sample.image, sample.mask) for sample in batch]
            images = self._to_device(torch.stack([image for image, _ in pairs]))
            masks = torch.stack([mask for _, mask in pairs]).to(self.device)
            with self._autocast():
                logits = self.model(images).float()
            for index, sample in enumerate(batch):
                losses.append(self.loss_function(logits[index : index + 1], masks[index : index + 1]).item())
                prediction = logits[index].argmax(dim=0).to(torch.uint8).cpu().numpy()
                evaluator.add(prediction, sample.mask, name=str(getattr(sample, "image_path", index)))
        result = evaluator.result()
        result["loss"] = float(np.mean(losses)) if losses else float("nan")
        return result

    # checkpoints ---------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything that moves during training, for ``last.pt``."""
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
        }
        if self.discriminator is not None:
            assert self.discriminator_optimizer is not None and self.discriminator_scheduler is not None
            state["discriminator"] = {
                "state_dict": self.discriminator.state_dict(),
                "optimizer": self.discriminator_optimizer.state_dict(),
                "scheduler": self.discriminator_scheduler.state_dict(),
                "scaler": self.discriminator_scaler.state_dict(),
                "num_classes": self.classes.num_classes,
                "image_channels": int(getattr(self.discriminator, "image_channels", 0)),
                "base_channels": self.config.discriminator_base_channels,
            }
        return state

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.iteration = int(checkpoint["iteration"])
        saved = checkpoint.get("discriminator")
        if self.discriminator is not None:
            if saved is None:
                raise PixelwiseError(
                    f"{checkpoint['path']}: this run trained without a discriminator; resume it with "
                    "adversarial_weight and semi_weight 0, or start a new run"
                )
            assert self.discriminator_optimizer is not None and self.discriminator_scheduler is not None
            self.discriminator.load_state_dict(saved["state_dict"])
            self.discriminator_optimizer.load_state_dict(saved["optimizer"])
            self.discriminator_scheduler.load_state_dict(saved["scheduler"])
            if saved.get("scaler"):
                self.discriminator_scaler.load_state_dict(saved["scaler"])

    # helpers -------------------------------------------------------------------------------------------

    def _to_device(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.config.channels_last else images

    def _image_condition(self, images: Tensor) -> tuple[Tensor, ...]:
        return (images,) if self.config.discriminator_image else ()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.config.amp:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.device.type == "cpu" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)


@contextlib.contextmanager
def frozen_parameters(module: nn.Module | None) -> Iterator[None]:
    """``adversarial.objectives.frozen`` when there is a module, nothing otherwise."""
    if module is None:
        yield
        return
    from pixelwise.adversarial.objectives import frozen

    with frozen(module):
        yield


def _same_size_batches(dataset: Samples, batch_size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for index in range(len(dataset)):
        sample = dataset[index]
        if batch and (len(batch) == batch_size or batch[0].image.shape != sample.image.shape):
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch


# --- building a run --------------------------------------------------------------------------------------


def learning_rate_factor(config: TrainConfig, total_iterations: int) -> Callable[[int], float]:
    """The multiplier of the base lr after ``step`` iterations: linear warm-up from 1/10, then poly or cosine.

    >>> factor = learning_rate_factor(TrainConfig(schedule="poly", poly_power=1.0), 10)
    >>> [round(factor(step), 2) for step in (0, 5, 10)]
    [1.0, 0.5, 0.0]
    """
    warmup = min(config.warmup_iterations, max(total_iterations - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        if config.schedule == "constant":
            return 1.0
        progress = min((step - warmup) / max(total_iterations - warmup, 1), 1.0)
        if config.schedule == "poly":
            return (1.0 - progress) ** config.poly_power
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_trainer(
    config: TrainConfig,
    *,
    classes: ClassSpec,
    in_channels: int,
    total_iterations: int,
    device: torch.device | None = None,
    pretrained: bool = True,
) -> Trainer:
    """The segmenter (and, when a weight asks for it, the discriminator) with optimizers and schedules.

    ``total_iterations`` sets the length of the poly / cosine schedule; ``pretrained=False`` skips loading
    encoder weights (a resumed run gets its weights from the checkpoint).
    """
    from pixelwise.models.registry import create_model

    device = device or _device(config.device)
    model = create_model(
        config.model,
        **_model_options(config),
        num_classes=classes.num_classes,
        in_channels=in_channels,
        encoder_weights=config.encoder_weights if pretrained else None,
    )
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(config, model)
    factor = learning_rate_factor(config, total_iterations)
    # a gradient scaler only matters for float16 on CUDA; bfloat16 on the CPU has float32's range
    scaling = config.amp and device.type == "cuda"
    trainer = Trainer(
        config=config,
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
        loss_function=make_loss(
            config.loss,
            ignore_index=classes.ignore_index,
            class_weights=config.class_weights,
            dice_weight=config.dice_weight,
            focal_gamma=config.focal_gamma,
        ),
        classes=classes,
        device=device,
        scaler=torch.amp.GradScaler(device.type, enabled=scaling),
        discriminator_scaler=torch.amp.GradScaler(device.type, enabled=scaling),
    )
    if config.uses_discriminator:
        from pixelwise.adversarial.discriminator import Discriminator

        discriminator = Discriminator(
            classes.num_classes,
            image_channels=in_channels if config.discriminator_image else 0,
            base_channels=config.discriminator_base_channels,
        ).to(device)
        discriminator_optimizer = torch.optim.Adam(
            discriminator.parameters(), lr=config.discriminator_lr, betas=config.discriminator_betas
        )
        trainer.discriminator = discriminator
        trainer.discriminator_optimizer = discriminator_optimizer
        # D's learning rate follows the same schedule as S's (poly in the official code)
        trainer.discriminator_scheduler = torch.optim.lr_scheduler.LambdaLR(discriminator_optimizer, factor)
    return trainer


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # no weight decay on norms and biases: decaying them only fights the normalisation
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PixelwiseError("device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    numpy_state: tuple[Any, ...] = tuple(np.random.get_state())
    return {
        "python": random.getstate(),
        # plain types, so that the checkpoint loads with weights_only=True
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *map(_plain, numpy_state[2:])],
        "torch": torch.get_rng_state(),
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _restore_rng(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(position), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])


def _normalization(config: TrainConfig, train: Samples, in_channels: int) -> dict[str, list[float]]:
    """ImageNet-style statistics for a pretrained encoder, else the training images' own."""
    from pixelwise.models.pretrained import normalization_for

    if config.normalization == "imagenet" or (config.normalization == "auto" and config.encoder_weights):
        statistics = normalization_for(config.encoder, config.encoder_weights or "imagenet", in_channels)
        assert statistics is not None
        mean, std = statistics
    else:
        mean, std = channel_statistics(train, list(range(len(train))))
    return {"mean": [float(value) for value in mean], "std": [float(value) for value in std]}


def _model_options(config: TrainConfig) -> dict[str, Any]:
    return {} if config.encoder is None else {"encoder": config.encoder}


def _unlabeled_dataset(
    config: TrainConfig,
    train: LabeledSource,
    hidden: list[int],
    unlabeled: Sequence[Any] | None,
    transform: PairedTransform,
    in_channels: int,
) -> Dataset[tuple[Tensor, Tensor]] | None:
    """Images whose labels are hidden, ``unlabeled`` and the folder's unlabeled/; None when D needs none."""
    sources: list[Dataset[tuple[Tensor, Tensor]]] = []
    counts = {"hidden labels": len(hidden)}
    if hidden:
        sources.append(UnlabeledCrops(SubsetView(train, hidden), transform, channels=in_channels))
    for name, items in (("given", unlabeled), ("unlabeled/", getattr(train, "unlabeled_paths", None))):
        if items:
            counts[name] = len(items)
            sources.append(UnlabeledCrops(list(items), transform, channels=in_channels))
    total = sum(counts.values())
    wants = config.semi_weight > 0 or (config.adversarial_weight > 0 and config.adversarial_weight_unlabeled > 0)
    if config.semi_weight > 0 and not total:
        raise PixelwiseError(
            "semi_weight > 0 needs unlabeled images: put them in DATA/unlabeled/, pass --unlabeled DIR, "
            "or hide labels with --labeled-fraction F"
        )
    if not wants or not total:
        if total:
            logger.info("not using %d unlabeled images: adversarial_weight and semi_weight are 0", total)
        return None
    logger.info("unlabeled images: %s", ", ".join(f"{count} ({name})" for name, count in counts.items() if count))
    return sources[0] if len(sources) == 1 else ConcatDataset(sources)


def _prepare_out_dir(out: Path, *, resume: bool, force: bool) -> None:
    if resume:
        if not (out / LAST_FILE).is_file():
            raise PixelwiseError(f"{out}: no {LAST_FILE} to resume from; start a new run without --resume")
        return
    if out.is_file():
        raise PixelwiseError(f"{out}: is a file; give a folder for the run")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PixelwiseError(
            f"{out}: not empty; pass --resume to continue the run in it, --force to train into it anyway "
            "(files of the same names are replaced), or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)


def _score(config: TrainConfig, record: dict[str, Any]) -> float:
    """Higher is better: validation mIoU, or minus the training loss when there is no validation set."""
    value = record.get("val_miou")
    if value is None:
        value = -float(record.get("train_loss", math.inf))
    return -math.inf if value is None or math.isnan(value) else float(value)


# --- fit -------------------------------------------------------------------------------------------------


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
    ``last.pt``) or ``force``.
    """
    out = Path(out_dir)
    main = is_main_process()
    if main:
        _prepare_out_dir(out, resume=resume, force=force)
    resumed = load_checkpoint(out / LAST_FILE) if resume else None
    device = _device(config.device)
    _seed_everything(config.seed)
    classes: ClassSpec = train.classes
    in_channels = int(train.in_channels)
    if len(train) == 0:
        raise PixelwiseError("the training set is empty; give a dataset with images and masks")
    if resumed is not None:
        _check_resume(resumed, config, classes, in_channels)

    labeled, hidden = split_labeled(len(train), config.labeled_fraction, seed=config.seed)
    normalization = resumed["normalization"] if resumed else _normalization(config, train, in_channels)
    mean, std = normalization["mean"], normalization["std"]

    iterations_per_epoch = config.iterations_per_epoch or max(len(labeled) // config.batch_size, 1)
    trainer = build_trainer(
        config,
        classes=classes,
        in_channels=in_channels,
        total_iterations=config.epochs * iterations_per_epoch,
        device=device,
        pretrained=resumed is None,
    )
    model, optimizer = trainer.model, trainer.optimizer

    # the data
    augment = training_transform(
        crop_size=config.crop_size,
        mean=mean,
        std=std,
        ignore_index=classes.ignore_index,
        scale_range=config.scale_range,
        rotation=config.rotation,
        horizontal_flip=config.horizontal_flip,
        vertical_flip=config.vertical_flip,
        color_jitter=config.color_jitter,
    )
    evaluate = evaluation_transform(mean=mean, std=std, ignore_index=classes.ignore_index)
    labeled_data = LabeledCrops(train, labeled, augment)
    unlabeled_data = (
        _unlabeled_dataset(config, train, hidden, unlabeled, augment, in_channels)
        if config.uses_discriminator
        else None
    )

    # where the run stands
    history: list[dict[str, Any]] = []
    start_epoch, best_score, best_epoch, bad_epochs = 0, -math.inf, 0, 0
    if resumed is not None:
        trainer.load_state(resumed)
        history = list(resumed.get("history", []))
        start_epoch = int(resumed["epoch"])
        stopping = resumed["early_stopping"]
        best_score, best_epoch, bad_epochs = (
            float(stopping["best_score"]),
            int(stopping["best_epoch"]),
            int(stopping["bad_epochs"]),
        )
        _restore_rng(resumed["rng"])
        logger.info("resuming %s after epoch %d (iteration %d)", out, start_epoch, trainer.iteration)
    elif main:
        config.save_yaml(out / CONFIG_FILE)
    logger.info(
        "training %s on %d images (%d labeled), %d iterations per epoch, %d epochs, device %s",
        config.model,
        len(train),
        len(labeled),
        iterations_per_epoch,
        config.epochs,
        device,
    )

    # the model as built (with the encoder the registry chose), so that predict rebuilds exactly this one
    built = dict(getattr(model, "spec", {}))
    model_spec = {
        "name": config.model,
        "options": {k: v for k, v in built.items() if k not in ("name", "num_classes", "in_channels")}
        or _model_options(config),
    }

    def payload(epoch: int, metrics: dict[str, Any], *, for_resume: bool) -> dict[str, Any]:
        content: dict[str, Any] = {
            "model": model_spec,
            "state_dict": model.state_dict(),
            "classes": classes.to_dict(),
            "normalization": normalization,
            "in_channels": in_channels,
            "tile_size": config.tile_size,
            "config": config.to_dict(),
            "metrics": metrics,
            "versions": library_versions(),
            "epoch": epoch,
        }
        if for_resume:
            content.update(trainer.state())
            content["rng"] = _rng_state()
            content["history"] = history
            content["early_stopping"] = {"best_score": best_score, "best_epoch": best_epoch, "bad_epochs": bad_epochs}
        return content

    stopped_early = config.patience > 0 and bad_epochs >= config.patience
    for epoch in range(start_epoch, config.epochs):
        if stopped_early:
            break
        started = time.perf_counter()
        train_stats = _train_epoch(trainer, labeled_data, unlabeled_data, epoch, iterations_per_epoch, progress)
        record: dict[str, Any] = {"epoch": epoch + 1, "iteration": trainer.iteration}
        record["lr"] = optimizer.param_groups[0]["lr"]
        record.update({f"train_{key}": value for key, value in reduce_mean(train_stats).items()})
        val_metrics: dict[str, Any] = {}
        if val is not None and len(val) > 0 and main:
            val_metrics = trainer.validate(val, evaluate)
            record.update(_flat_metrics(val_metrics))
        record = broadcast_from_main(record)
        record["seconds"] = round(time.perf_counter() - started, 3)
        history.append(record)

        score = _score(config, record)
        improved = score > best_score + config.min_delta or epoch == 0
        if improved:
            best_score, best_epoch, bad_epochs = score, epoch + 1, 0
        else:
            bad_epochs += 1
        stopped_early = config.patience > 0 and bad_epochs >= config.patience
        if main:
            checkpoint_metrics = json_ready(val_metrics or {"train_loss": record.get("train_loss")})
            save_checkpoint(out / LAST_FILE, payload(epoch + 1, checkpoint_metrics, for_resume=True))
            if improved:
                save_checkpoint(out / BEST_FILE, payload(epoch + 1, checkpoint_metrics, for_resume=False))
            write_history(out / METRICS_FILE, history)
            plot_curves(history, out / CURVES_FILE)
            logger.info(_summary(record, config.epochs, improved))
        if stopped_early:
            logger.info("stopping early: no improvement for %d epochs (best: epoch %d)", bad_epochs, best_epoch)

    return RunResult(
        out_dir=out,
        best_checkpoint=out / BEST_FILE,
        last_checkpoint=out / LAST_FILE,
        history=history,
        best_epoch=best_epoch,
        best_score=best_score,
        stopped_early=stopped_early,
    )


def _train_epoch(
    trainer: Trainer,
    labeled: Dataset[Any],
    unlabeled: Dataset[Any] | None,
    epoch: int,
    iterations: int,
    progress: bool,
) -> dict[str, float]:
    """``iterations`` labeled batches (one pass unless ``iterations_per_epoch`` asks for more), each with an
    unlabeled batch when there are unlabeled images; both loaders restart when used up."""
    from tqdm import tqdm

    config = trainer.config
    loader = make_loader(
        labeled, batch_size=config.batch_size, seed=config.seed, epoch=epoch, stream=0, num_workers=config.num_workers
    )
    unlabeled_batches = None
    if unlabeled is not None:
        unlabeled_loader = make_loader(
            unlabeled,
            batch_size=config.batch_size,
            seed=config.seed,
            epoch=epoch,
            stream=1,
            num_workers=config.num_workers,
        )
        unlabeled_batches = _forever(unlabeled_loader)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    bar = tqdm(
        total=iterations,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        leave=False,
        disable=not (progress and is_main_process()),
        unit="it",
    )
    with bar:
        for images, masks in itertools.islice(_forever(loader), iterations):
            extra = next(unlabeled_batches) if unlabeled_batches is not None else None
            stats = trainer.train_step(images, masks, extra)
            for key, value in stats.items():
                if not math.isnan(value):
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
            bar.update()
            bar.set_postfix(loss=f"{stats['loss']:.4f}", refresh=False)
    return {key: sums[key] / counts[key] for key in sums}


def _forever(loader: DataLoader[Any]) -> Iterator[Any]:
    """Batches of ``loader`` without end; each new pass continues the loader's generator (a new order)."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            return


def _check_resume(checkpoint: dict[str, Any], config: TrainConfig, classes: ClassSpec, in_channels: int) -> None:
    saved = checkpoint.get("config", {})
    if checkpoint.get("classes") != classes.to_dict() or int(checkpoint["in_channels"]) != in_channels:
        raise PixelwiseError(
            f"{checkpoint['path']}: the run was trained on other classes or channels than this dataset; "
            "resume it with the same data, or start a new run"
        )
    # these may change between sessions; any other change is allowed but worth a line in the log
    free = {"epochs", "patience", "min_delta", "num_workers", "device"}
    changed = sorted(key for key, value in config.to_dict().items() if key not in free and saved.get(key) != value)
    if changed:
        logger.warning("resuming with changed settings: %s", ", ".join(changed))


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar validation metrics as ``val_<name>``, plus the per-class IoU."""
    settings = {"boundary_tolerance", "ignore_index", "num_pixels"}
    flat: dict[str, Any] = {
        f"val_{key}": value for key, value in metrics.items() if isinstance(value, (int, float)) and key not in settings
    }
    per_class = metrics.get("per_class", {})
    flat["val_iou"] = {name: scores["iou"] for name, scores in per_class.items()}
    return flat


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl``: one JSON object per epoch, rewritten whole so it always matches ``last.pt``."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(json_ready(record)) + "\n" for record in history))


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """``curves.png``: losses, validation scores and, in adversarial runs, D's loss and accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [record["epoch"] for record in history]

    def series(key: str) -> list[float]:
        return [float("nan") if record.get(key) is None else float(record[key]) for record in history]

    panels: list[tuple[str, list[tuple[str, str]]]] = [
        ("loss", [("train_loss", "train"), ("train_supervised_loss", "train (supervised)"), ("val_loss", "val")]),
        ("validation", [("val_miou", "mIoU"), ("val_mean_dice", "mean Dice"), ("val_pixel_accuracy", "pixel acc.")]),
    ]
    if any("train_discriminator_loss" in record for record in history):
        panels.append(
            (
                "discriminator",
                [
                    ("train_discriminator_loss", "D loss"),
                    ("train_discriminator_accuracy_real", "D acc. real"),
                    ("train_discriminator_accuracy_fake", "D acc. predicted"),
                    ("train_semi_fraction", "unlabeled px trusted"),
                ],
            )
        )
    panels = [(title, [(k, n) for k, n in lines if any(k in r for r in history)]) for title, lines in panels]
    panels = [(title, lines) for title, lines in panels if lines]
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 3.4), squeeze=False)
    for axis, (title, lines) in zip(axes[0], panels, strict=False):
        for key, label in lines:
            axis.plot(epochs, series(key), marker="o", markersize=3, label=label)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)


def _summary(record: dict[str, Any], epochs: int, improved: bool) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record.get('train_loss', float('nan')):.4f}"]
    if "val_miou" in record:
        parts.append(f"val mIoU {record['val_miou']:.4f}")
    if "train_discriminator_loss" in record:
        parts.append(
            f"D loss {record['train_discriminator_loss']:.3f} "
            f"(acc. real {record['train_discriminator_accuracy_real']:.2f}, "
            f"predicted {record['train_discriminator_accuracy_fake']:.2f})"
        )
    if "train_semi_fraction" in record:
        parts.append(f"trusted {record['train_semi_fraction']:.2f}")
    parts.append(f"{record['seconds']:.1f} s")
    return ", ".join(parts) + (" *" if improved else "")
