"""The Trainer: the networks, optimizers and loss of one run, and the two updates of one iteration.

One iteration (Hung et al. 2018, see docs/design.md and methods.md section 3):

1. **Segmenter S**, with the discriminator D frozen: ``L = loss(S(X), Y) + λ_adv · BCE(D(P), 1)`` on a
   labeled batch, then on an unlabeled batch ``λ_adv,u · BCE(D(P_u), 1) + λ_semi · CE(S(X_u), argmax P_u)``
   over the pixels D trusts (``σ(D(P_u)) > T_semi``, from iteration ``semi_start`` on). One optimizer step.
2. **Discriminator D**: ``BCE(D(Y1), 1) + BCE(D(P.detach()), 0)`` on the labeled batch. One optimizer step.

With ``adversarial_weight = semi_weight = 0`` there is no D and step 1 is plain supervised training.

Each network is held twice: ``model`` / ``discriminator`` is what the training step calls (wrapped by
``distributed.wrap_for_training``, e.g. in DistributedDataParallel), ``raw_model`` / ``raw_discriminator``
the network itself (torchvision's ``model_without_ddp``), which validation, the model spec and the
checkpoints use. In one process both names hold the same module.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import PairedTransform
from pixelwise.errors import PixelwiseError
from pixelwise.losses import LossFunction, make_loss
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import Samples
from pixelwise.train.distributed import choose_device, is_main_process, share_of, whole_set_result, wrap_for_training

logger = logging.getLogger(__name__)

# the numbers one step logs: tensors stay on the device (reading them would wait for the GPU every step)
Stats = dict[str, "Tensor | float"]


@dataclass
class Trainer:
    """The networks, optimizers and loss of one run, and the two updates of one iteration.

    Batches: images (N, C, h, w) float32 standardised, masks (N, h, w) int64 with ``ignore_index``;
    unlabeled images (M, C, h, w) with a validity map (M, h, w) (``ignore_index`` on padding).
    """

    config: TrainConfig
    model: nn.Module  # what the training step calls (possibly wrapped for several processes)
    raw_model: nn.Module  # the segmenter itself: validation, model spec, checkpoints
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_function: LossFunction
    classes: ClassSpec
    device: torch.device
    discriminator: nn.Module | None = None
    raw_discriminator: nn.Module | None = None
    discriminator_optimizer: torch.optim.Optimizer | None = None
    discriminator_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))
    discriminator_scaler: torch.amp.GradScaler = field(
        default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False)
    )
    iteration: int = 0
    amp_dtype: torch.dtype | None = None  # what autocast computes in with ``amp``; None: float32

    # one iteration -------------------------------------------------------------------------------------

    def train_step(self, images: Tensor, masks: Tensor, unlabeled: tuple[Tensor, Tensor] | None = None) -> Stats:
        """S's update, then D's (if any); returns the numbers to log for this iteration (0-d tensors or floats)."""
        stats, probabilities = self.segmenter_step(images, masks, unlabeled)
        if self.discriminator is not None and probabilities is not None:
            stats.update(self.discriminator_step(images, masks, probabilities))
        self.iteration += 1
        return stats

    def segmenter_step(
        self, images: Tensor, masks: Tensor, unlabeled: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Stats, Tensor | None]:
        """Update S once with D frozen; returns the stats and P = softmax(S(X)) detached (for D's step)."""
        config, discriminator = self.config, self.discriminator
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        images, masks = self._to_device(images), masks.to(self.device)
        stats: Stats = {}
        probabilities: Tensor | None = None
        # D's parameters require no gradient inside: S's losses flow *through* D into P, never into D
        with frozen_parameters(discriminator):
            with self._autocast():
                logits = self.model(images)
                supervised = self.loss_function(logits, masks)
            loss = supervised
            stats["supervised_loss"] = supervised.detach()
            if discriminator is not None:
                probabilities = logits.float().softmax(dim=1)
                if config.adversarial_weight > 0:
                    from pixelwise.adversarial.objectives import adversarial_loss

                    with self._autocast():
                        fake = discriminator(probabilities, *self._image_condition(images))
                    adversarial = adversarial_loss(fake.float(), masks != self.classes.ignore_index)
                    loss = loss + config.adversarial_weight * adversarial
                    stats["adversarial_loss"] = adversarial.detach()
            self.scaler.scale(loss).backward()
            total = loss.detach()
            if unlabeled is not None and discriminator is not None and self._wants_unlabeled():
                unlabeled_loss, unlabeled_stats = self._unlabeled_loss(*unlabeled)
                self.scaler.scale(unlabeled_loss).backward()
                total = total + unlabeled_loss.detach()
                stats.update(unlabeled_stats)
        stats["loss"] = total
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return stats, None if probabilities is None else probabilities.detach()

    def discriminator_step(self, images: Tensor, masks: Tensor, probabilities: Tensor) -> Stats:
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
            "discriminator_loss": loss.detach(),
            "discriminator_accuracy_real": accuracy_real,
            "discriminator_accuracy_fake": accuracy_fake,
        }

    def _wants_unlabeled(self) -> bool:
        config = self.config
        adversarial = config.adversarial_weight > 0 and config.adversarial_weight_unlabeled > 0
        return adversarial or self._semi_active()

    def _semi_active(self) -> bool:
        return self.config.semi_weight > 0 and self.iteration >= self.config.semi_start

    def _unlabeled_loss(self, images: Tensor, validity: Tensor) -> tuple[Tensor, Stats]:
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
        stats: Stats = {}
        if config.adversarial_weight > 0 and config.adversarial_weight_unlabeled > 0:
            adversarial = adversarial_loss(d_logits, valid)
            loss = loss + config.adversarial_weight_unlabeled * adversarial
            stats["unlabeled_adversarial_loss"] = adversarial.detach()
        if self._semi_active():
            semi, fraction = semi_supervised_loss(
                logits.float(), d_logits.detach(), valid, threshold=config.semi_threshold
            )
            loss = loss + config.semi_weight * semi
            stats["semi_loss"] = semi.detach()
        else:  # logged all the same: how far D is from trusting S before the term starts
            _, fraction = trusted_pixels(d_logits.detach(), valid, threshold=config.semi_threshold)
        stats["semi_fraction"] = fraction
        return loss, stats

    # evaluation ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def validate(self, dataset: Samples, transform: PairedTransform) -> dict[str, Any]:
        """Metrics of ``pixelwise.metrics.Evaluator`` on whole images, plus the mean loss per image.

        Runs the raw network (never a multi-process wrapper, so no collective inside). Under torchrun each
        process scores its own share of the images and the counts are summed afterwards (every process calls
        this). Consecutive images of the same size go through the network together, up to ``batch_size``.
        """
        from pixelwise.metrics import Evaluator

        self.raw_model.eval()
        evaluator = Evaluator(self.classes)
        losses: list[float] = []
        for batch in _same_size_batches(share_of(dataset), self.config.batch_size):
            pairs = [transform(sample.image, sample.mask) for sample in batch]
            images = self._to_device(torch.stack([image for image, _ in pairs]))
            masks = torch.stack([mask for _, mask in pairs]).to(self.device)
            with self._autocast():
                logits = self.raw_model(images).float()
            for index, sample in enumerate(batch):
                losses.append(self.loss_function(logits[index : index + 1], masks[index : index + 1]).item())
                prediction = logits[index].argmax(dim=0).to(torch.uint8).cpu().numpy()
                evaluator.add(prediction, sample.mask, name=str(getattr(sample, "image_path", index)))
        return whole_set_result(evaluator, losses)

    # what a checkpoint holds ---------------------------------------------------------------------------

    def model_spec(self) -> dict[str, Any]:
        """``{"name", "options"}`` of the segmenter as built (with the encoder the registry chose), so that
        ``model_from_checkpoint`` rebuilds exactly this network."""
        built = dict(getattr(self.raw_model, "spec", {}))
        options = {k: v for k, v in built.items() if k not in ("name", "num_classes", "in_channels")}
        return {"name": self.config.model, "options": options or model_arguments(self.config)}

    def state(self) -> dict[str, Any]:
        """Everything that moves during training besides the segmenter's weights, for ``last.pt``."""
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
        }
        if self.raw_discriminator is not None:
            assert self.discriminator_optimizer is not None and self.discriminator_scheduler is not None
            state["discriminator"] = {
                "state_dict": self.raw_discriminator.state_dict(),
                "optimizer": self.discriminator_optimizer.state_dict(),
                "scheduler": self.discriminator_scheduler.state_dict(),
                "scaler": self.discriminator_scaler.state_dict(),
                "num_classes": self.classes.num_classes,
                "image_channels": int(getattr(self.raw_discriminator, "image_channels", 0)),
                "base_channels": self.config.discriminator_base_channels,
            }
        return state

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        """Weights, optimizers, schedulers, scalers and the iteration count from a ``last.pt``."""
        self.raw_model.load_state_dict(checkpoint["state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.iteration = int(checkpoint["iteration"])
        saved = checkpoint.get("discriminator")
        if self.raw_discriminator is not None:
            if saved is None:
                raise PixelwiseError(
                    f"{checkpoint['path']}: this run trained without a discriminator; resume it with "
                    "adversarial_weight and semi_weight 0, or start a new run"
                )
            assert self.discriminator_optimizer is not None and self.discriminator_scheduler is not None
            self.raw_discriminator.load_state_dict(saved["state_dict"])
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
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


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


# --- building one ----------------------------------------------------------------------------------------


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
    from pixelwise.hardware import autocast_dtype
    from pixelwise.models.registry import create_model

    device = device or choose_device(config.device)
    raw_model = create_model(
        config.model,
        **model_arguments(config),
        num_classes=classes.num_classes,
        in_channels=in_channels,
        encoder_weights=config.encoder_weights if pretrained else None,
    )
    raw_model.to(device)
    if config.channels_last:
        raw_model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, raw_model)
    factor = learning_rate_factor(config, total_iterations)
    precision = autocast_dtype(device) if config.amp else None
    if config.amp and precision is None and is_main_process():
        logger.warning(
            "amp: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), where bf16 trains about 4x "
            "slower than float32; training in float32"
        )
    # a gradient scaler only matters for float16; bfloat16 has float32's range
    scaling = precision == torch.float16
    trainer = Trainer(
        config=config,
        model=wrap_for_training(raw_model, torch.zeros(1, in_channels, 1, 1, device=device)),
        raw_model=raw_model,
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
        amp_dtype=precision,
    )
    if config.uses_discriminator:
        from pixelwise.adversarial.discriminator import Discriminator

        raw_discriminator = Discriminator(
            classes.num_classes,
            image_channels=in_channels if config.discriminator_image else 0,
            base_channels=config.discriminator_base_channels,
        ).to(device)
        discriminator_optimizer = torch.optim.Adam(
            raw_discriminator.parameters(), lr=config.discriminator_lr, betas=config.discriminator_betas
        )
        trainer.discriminator = wrap_for_training(raw_discriminator)
        trainer.raw_discriminator = raw_discriminator
        trainer.discriminator_optimizer = discriminator_optimizer
        # D's learning rate follows the same schedule as S's (poly in the official code)
        trainer.discriminator_scheduler = torch.optim.lr_scheduler.LambdaLR(discriminator_optimizer, factor)
    return trainer


def model_arguments(config: TrainConfig) -> dict[str, Any]:
    """The keyword arguments of ``create_model`` that the config chooses: the encoder and the model's options."""
    encoder = {} if config.encoder is None else {"encoder": config.encoder}
    return {**encoder, **config.model_options}


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD over ``model``'s trainable parameters; no weight decay on norms and biases (decaying them
    only fights the normalisation)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


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
