"""The Trainer: the networks, optimizers and loss of one run, and the two updates of one iteration.

One iteration (Hung et al. 2018, see docs/design.md and methods.md section 3):

1. **Segmenter S**, with the discriminator D frozen: ``L = loss(S(X), Y) + λ_adv · BCE(D(P), 1)`` on a
   labeled batch, then the terms of an unlabeled batch (``train.semi``: ``λ_adv,u · BCE(D(P_u), 1) +
   λ_semi · CE(S(X_u), argmax P_u)`` over the pixels D trusts, from iteration ``semi_start`` on; self-training;
   FixMatch). One optimizer step.
2. **Discriminator D**: ``BCE(D(Y1), 1) + BCE(D(P.detach()), 0)``, the reals from a labeled batch of their
   own, the fakes the labeled and the unlabeled predictions. One optimizer step.

D sees predictions zeroed where the real maps are (padding, ignored pixels), and keeps a real spatial map on
the training crops (``adversarial.discriminator.downsamplings_for``). With ``adversarial_weight = 0`` and no
semi-supervised term trusting D there is no D, and without unlabeled terms step 1 is plain supervised training.

Each network is held twice: ``model`` / ``discriminator`` is what the training step calls (wrapped by
``distributed.wrap_for_training``, e.g. in DistributedDataParallel), ``raw_model`` / ``raw_discriminator``
the network itself (torchvision's ``model_without_ddp``), which validation, the model spec and the
checkpoints use. In one process both names hold the same module.

The terms that plug into a step (``train.semi``) or look at the networks each epoch (``train.pseudo_labels``)
receive ``Trainer.networks()``, a ``train.networks.Networks`` record (S's and D's forward passes, the
device, the precision, the config and the iteration), never the Trainer: they import nothing from here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from pixelwise.checkpoint import Checkpoint
from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import PairedTransform
from pixelwise.errors import PixelwiseError
from pixelwise.losses import LossFunction, make_loss
from pixelwise.train.checkpoint import ResumeState
from pixelwise.train.config import TrainConfig
from pixelwise.train.data import Samples, derived_seed, same_size_batches
from pixelwise.train.distributed import is_main_process, process_device, share_of, whole_set_result, wrap_for_training
from pixelwise.train.networks import Networks
from pixelwise.train.optimization import learning_rate_factor, make_optimizer
from pixelwise.train.semi import Predicted, unlabeled_loss, wants_unlabeled

logger = logging.getLogger(__name__)

# the numbers one step logs: tensors stay on the device (reading them would wait for the GPU every step)
Stats = dict[str, "Tensor | float"]
_SMOOTHING = 0x5A0  # the key of the real maps' smoothing noise (with the seed and the iteration)
_DISCRIMINATOR = 0xD15  # the key of D's initial weights (with the seed)


@dataclass
class Trainer:
    """The networks, optimizers and loss of one run, and the two updates of one iteration.

    Batches: images (N, C, h, w) float32 standardised, masks (N, h, w) int64 with ``ignore_index``;
    unlabeled images (M, C, h, w) with a validity map (M, h, w) (``ignore_index`` on padding) and, for
    FixMatch, their strong views (M, C, h, w); D's reals: a labeled batch (images, masks) of their own.
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

    def train_step(
        self,
        images: Tensor,
        masks: Tensor,
        unlabeled: tuple[Tensor, ...] | None = None,
        reals: tuple[Tensor, Tensor] | None = None,
    ) -> Stats:
        """S's update, then D's (if any) on ``reals`` (default: the labeled batch); returns the numbers to log
        (0-d tensors or floats)."""
        stats, fakes = self.segmenter_step(images, masks, unlabeled)
        if self.discriminator is not None and fakes:
            stats.update(self.discriminator_step(reals or (images, masks), fakes))
        self.iteration += 1
        return stats

    def segmenter_step(
        self, images: Tensor, masks: Tensor, unlabeled: tuple[Tensor, ...] | None = None
    ) -> tuple[Stats, list[Predicted]]:
        """Update S once with D frozen; returns the stats and the detached predictions D's step takes as fakes."""
        config, discriminator, networks = self.config, self.discriminator, self.networks()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        images, masks = networks.to_device(images), masks.to(self.device)
        valid = masks != self.classes.ignore_index
        stats: Stats = {}
        fakes: list[Predicted] = []
        # D's parameters require no gradient inside: S's losses flow *through* D into P, never into D
        with frozen_parameters(discriminator):
            with networks.autocast():
                logits = self.model(images)
                supervised = self.loss_function(logits, masks)
            loss = supervised
            stats["supervised_loss"] = supervised.detach()
            if discriminator is not None:
                probabilities = logits.float().softmax(dim=1)
                fakes.append(Predicted(probabilities.detach(), valid, images))
                if config.adversarial_weight > 0:
                    from pixelwise.adversarial.objectives import adversarial_loss

                    fake = networks.judge(networks.shown_to_d(probabilities, valid), images)
                    adversarial = adversarial_loss(fake, valid)
                    loss = loss + config.adversarial_weight * adversarial
                    stats["adversarial_loss"] = adversarial.detach()
            self.scaler.scale(loss).backward()
            total = loss.detach()
            if unlabeled is not None and wants_unlabeled(networks):
                unlabeled_term, unlabeled_stats, unlabeled_fake = unlabeled_loss(networks, unlabeled)
                self.scaler.scale(unlabeled_term).backward()
                total = total + unlabeled_term.detach()
                stats.update(unlabeled_stats)
                if unlabeled_fake is not None:
                    fakes.append(unlabeled_fake)
        stats["loss"] = total
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return stats, fakes

    def discriminator_step(self, reals: tuple[Tensor, Tensor], fakes: list[Predicted]) -> Stats:
        """Update D once on one-hot truths (real) and S's detached predictions (fake); S is not touched.

        ``reals`` = (images, masks) of a labeled batch; ``fakes`` from ``segmenter_step``. Each half of the loss
        is a mean over its own valid pixels, so more fakes than reals weigh no more.
        """
        from pixelwise.adversarial.objectives import (
            discriminator_accuracy,
            discriminator_losses,
            one_hot,
            smooth_one_hot,
        )

        assert self.discriminator is not None and self.discriminator_optimizer is not None
        networks = self.networks()
        self.discriminator.train()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        real_images, real_masks = networks.to_device(reals[0]), reals[1].to(self.device)
        real, real_valid = one_hot(real_masks, self.classes.num_classes, ignore_index=self.classes.ignore_index)
        if self.config.discriminator_real_smoothing > 0:
            # D must not win by spotting exact zeros and ones; the noise has its own stream, keyed by the iteration
            generator = torch.Generator(self.device).manual_seed(
                derived_seed(self.config.seed, _SMOOTHING, self.iteration)
            )
            real = smooth_one_hot(
                real, real_valid, amount=self.config.discriminator_real_smoothing, generator=generator
            )
        fake_valid = torch.cat([fake.valid for fake in fakes])
        fake = networks.shown_to_d(torch.cat([fake.probabilities for fake in fakes]), fake_valid)
        fake_images = torch.cat([fake.images for fake in fakes])
        real_logits = networks.judge(real, real_images)
        fake_logits = networks.judge(fake, fake_images)
        real_loss, fake_loss = discriminator_losses(
            real_logits, fake_logits, real_valid, fake_valid=fake_valid, real_label=self.config.discriminator_real_label
        )
        loss = real_loss + fake_loss
        self.discriminator_scaler.scale(loss).backward()
        self.discriminator_scaler.step(self.discriminator_optimizer)
        self.discriminator_scaler.update()
        if self.discriminator_scheduler is not None:
            self.discriminator_scheduler.step()
        accuracy_real, accuracy_fake = discriminator_accuracy(
            real_logits.detach(), fake_logits.detach(), real_valid, fake_valid=fake_valid
        )
        return {
            "discriminator_loss": loss.detach(),
            "discriminator_loss_real": real_loss.detach(),
            "discriminator_loss_fake": fake_loss.detach(),
            "discriminator_accuracy_real": accuracy_real,
            "discriminator_accuracy_fake": accuracy_fake,
        }

    def networks(self, *, raw: bool = False) -> Networks:
        """S and D as the terms that plug into a step call them: the wrapped networks the training step
        calls, or with ``raw`` the networks themselves (validation, the pseudo-label check)."""
        return Networks(
            config=self.config,
            segmenter=self.raw_model if raw else self.model,
            discriminator=self.raw_discriminator if raw else self.discriminator,
            device=self.device,
            ignore_index=self.classes.ignore_index,
            iteration=self.iteration,
            amp_dtype=self.amp_dtype,
        )

    def set_schedule_length(self, total_iterations: int) -> None:
        """Stretch the learning-rate schedules (S's, and D's without warm-up) to end after ``total_iterations``
        (a time budget's plan); the next step already follows the new length."""
        _stretch(self.scheduler, self.optimizer, learning_rate_factor(self.config, total_iterations))
        if self.discriminator_scheduler is not None and self.discriminator_optimizer is not None:
            factor = learning_rate_factor(self.config, total_iterations, warmup=0)
            _stretch(self.discriminator_scheduler, self.discriminator_optimizer, factor)

    # evaluation ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def validate(self, dataset: Samples, transform: PairedTransform) -> dict[str, Any]:
        """Metrics of ``pixelwise.metrics.Evaluator`` on whole images, plus the mean loss per image.

        Runs the raw network (never a multi-process wrapper, so no collective inside). Under torchrun each
        process scores its own share of the images and the counts are summed afterwards (every process calls
        this). Consecutive images of the same size go through the network together, up to ``batch_size``.
        """
        from pixelwise.metrics import Evaluator

        networks = self.networks(raw=True)
        self.raw_model.eval()
        evaluator = Evaluator(self.classes)
        losses: list[float] = []
        for batch in same_size_batches(share_of(dataset), self.config.batch_size):
            pairs = [transform(sample.image, sample.mask) for sample in batch]
            images = networks.to_device(torch.stack([image for image, _ in pairs]))
            masks = torch.stack([mask for _, mask in pairs]).to(self.device)
            logits = networks.segment(images)
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
                "downsamplings": int(getattr(self.raw_discriminator, "downsamplings", 5)),
            }
        return state

    def load_state(self, checkpoint: Checkpoint) -> None:
        """Weights, optimizers, schedulers, scalers and the iteration count from a ``last.pt``."""
        resume = ResumeState.from_checkpoint(checkpoint)
        self.raw_model.load_state_dict(checkpoint.state_dict)
        self.optimizer.load_state_dict(resume.optimizer)
        self.scheduler.load_state_dict(resume.scheduler)
        if resume.scaler:
            self.scaler.load_state_dict(resume.scaler)
        self.iteration = resume.iteration
        saved = resume.discriminator
        if self.raw_discriminator is not None:
            if saved is None:
                raise PixelwiseError(
                    f"{checkpoint.source}: this run trained without a discriminator; resume it with "
                    "adversarial_weight and semi_weight 0, or start a new run"
                )
            assert self.discriminator_optimizer is not None and self.discriminator_scheduler is not None
            # the strides change no weight's shape: a D saved with other strides would load and judge otherwise
            saved_strides, strides = int(saved.get("downsamplings", 5)), self.raw_discriminator.downsamplings
            if saved_strides != strides:  # runs saved before D adapted to the crop had five
                raise PixelwiseError(
                    f"{checkpoint.source}: the run's discriminator has {saved_strides} stride-2 layers, this "
                    f"config's {strides}; resume with the run's crop_size and discriminator_min_map (0 for a run "
                    "saved before D adapted to the crop)"
                )
            self.raw_discriminator.load_state_dict(saved["state_dict"])
            self.discriminator_optimizer.load_state_dict(saved["optimizer"])
            self.discriminator_scheduler.load_state_dict(saved["scheduler"])
            if saved.get("scaler"):
                self.discriminator_scaler.load_state_dict(saved["scaler"])


def _stretch(
    scheduler: torch.optim.lr_scheduler.LRScheduler, optimizer: torch.optim.Optimizer, factor: Callable[[int], float]
) -> None:
    """``scheduler`` (a LambdaLR) follows ``factor`` from now on, the learning rate of the next step included."""
    scheduler.lr_lambdas = [factor] * len(optimizer.param_groups)  # type: ignore[attr-defined]
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() says


@contextlib.contextmanager
def frozen_parameters(module: nn.Module | None) -> Iterator[None]:
    """``adversarial.objectives.frozen`` when there is a module, nothing otherwise."""
    if module is None:
        yield
        return
    from pixelwise.adversarial.objectives import frozen

    with frozen(module):
        yield


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

    device = device or process_device(config.device)
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
        from pixelwise.adversarial.discriminator import discriminator_for_crops

        raw_discriminator = discriminator_for_crops(
            classes.num_classes,
            config.crop_size,
            min_map=config.discriminator_min_map,
            seed=derived_seed(config.seed, _DISCRIMINATOR),  # its own stream: adding D changes no other draw
            image_channels=in_channels if config.discriminator_image else 0,
            base_channels=config.discriminator_base_channels,
        ).to(device)
        discriminator_optimizer = torch.optim.Adam(
            raw_discriminator.parameters(), lr=config.discriminator_lr, betas=config.discriminator_betas
        )
        trainer.discriminator = wrap_for_training(raw_discriminator)
        trainer.raw_discriminator = raw_discriminator
        trainer.discriminator_optimizer = discriminator_optimizer
        # D's learning rate follows S's schedule (poly in the official code), without S's warm-up
        trainer.discriminator_scheduler = torch.optim.lr_scheduler.LambdaLR(
            discriminator_optimizer, learning_rate_factor(config, total_iterations, warmup=0)
        )
    return trainer


def model_arguments(config: TrainConfig) -> dict[str, Any]:
    """The keyword arguments of ``create_model`` that the config chooses: the encoder and the model's options."""
    encoder = {} if config.encoder is None else {"encoder": config.encoder}
    return {**encoder, **config.model_options}
