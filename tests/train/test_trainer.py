"""The Trainer: gradient isolation between S and D, the raw network beside the wrapped one, the trusted
share of unlabeled pixels, the learning-rate schedules."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from pixelwise.train import trainer as trainer_module
from pixelwise.train.config import TrainConfig
from pixelwise.train.optimization import learning_rate_factor
from pixelwise.train.trainer import build_trainer

from .conftest import TinyData

# a small, fast configuration: the tiny U-Net at width 16 on 16² crops
FAST = TrainConfig(epochs=1, batch_size=4, crop_size=16, lr=3e-3, patience=0, discriminator_base_channels=8)


class Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: calls the module, counts the calls, prefixes its state_dict."""

    def __init__(self, module: nn.Module, example: torch.Tensor | None = None) -> None:
        super().__init__()
        self.module = module
        self.calls = 0

    def forward(self, *inputs: Any) -> Any:
        self.calls += 1
        return self.module(*inputs)


def batches(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 1, 16, 16, generator=generator)
    masks = torch.randint(0, 3, (2, 16, 16), generator=generator)
    unlabeled = (torch.randn(2, 1, 16, 16, generator=generator), torch.zeros(2, 16, 16, dtype=torch.long))
    return images, masks, unlabeled


def test_gradients_do_not_leak_between_segmenter_and_discriminator(tiny_train: TinyData) -> None:
    config = FAST.replace(
        adversarial_weight=0.5, semi_weight=0.5, discriminator_lr=0.1, lr=0.1, discriminator_real_smoothing=0.2
    )
    trainer = build_trainer(config, classes=tiny_train.classes, in_channels=1, total_iterations=100)
    assert trainer.discriminator is not None
    images, masks, unlabeled = batches()
    trainer.train_step(images, masks, unlabeled)  # gives D gradients and Adam state

    def snapshot(module: torch.nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        parameters = [p.detach().clone() for p in module.parameters()]
        grads = [None if p.grad is None else p.grad.clone() for p in module.parameters()]
        return parameters, grads

    def same(first: list[torch.Tensor | None], second: list[torch.Tensor | None]) -> bool:
        return all(
            (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
            for a, b in zip(first, second, strict=True)
        )

    d_parameters, d_grads = snapshot(trainer.discriminator)
    s_parameters, _ = snapshot(trainer.model)
    stats, fakes = trainer.segmenter_step(images, masks, unlabeled)
    assert "adversarial_loss" in stats and "semi_loss" in stats
    after_parameters, after_grads = snapshot(trainer.discriminator)
    assert same(d_parameters, after_parameters) and same(d_grads, after_grads)  # S's step left D alone
    assert not same(s_parameters, snapshot(trainer.model)[0])  # ... and moved S
    assert all(p.requires_grad for p in trainer.discriminator.parameters())  # D unfrozen afterwards

    assert len(fakes) == 2 and not any(fake.probabilities.requires_grad for fake in fakes)  # labeled, unlabeled
    s_parameters, s_grads = snapshot(trainer.model)
    trainer.discriminator_step((images, masks), fakes)
    assert same(s_parameters, snapshot(trainer.model)[0]) and same(s_grads, snapshot(trainer.model)[1])
    assert not same(d_parameters, snapshot(trainer.discriminator)[0])  # D's step moved D


def test_learning_rate_schedules() -> None:
    cosine = learning_rate_factor(TrainConfig(schedule="cosine", warmup_iterations=2), 12)
    assert [round(cosine(step), 4) for step in (0, 1, 2, 7, 12)] == [0.1, 0.55, 1.0, 0.5, 0.0]
    poly = learning_rate_factor(TrainConfig(schedule="poly", poly_power=2.0), 4)
    assert [poly(step) for step in range(5)] == [1.0, 0.5625, 0.25, 0.0625, 0.0]
    assert learning_rate_factor(TrainConfig(schedule="constant", warmup_iterations=4), 10)(4) == 1.0


def test_the_step_calls_the_wrapped_networks_and_the_rest_uses_the_raw_ones(
    tiny_val: TinyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelwise.data.transforms import evaluation_transform

    monkeypatch.setattr(trainer_module, "wrap_for_training", Wrapper)
    config = FAST.replace(adversarial_weight=0.01, semi_weight=0.1, model_options={"width": 8})
    trainer = build_trainer(config, classes=tiny_val.classes, in_channels=1, total_iterations=10)
    assert isinstance(trainer.model, Wrapper) and trainer.model.module is trainer.raw_model
    assert isinstance(trainer.discriminator, Wrapper) and trainer.discriminator.module is trainer.raw_discriminator

    images, masks, unlabeled = batches()
    trainer.train_step(images, masks, unlabeled)
    assert trainer.model.calls == 2  # the labeled and the unlabeled batch
    assert trainer.discriminator.calls == 4  # S's two terms, then D's real and fake

    calls = trainer.model.calls
    metrics = trainer.validate(tiny_val, evaluation_transform(mean=[0.3], std=[0.2]))
    assert metrics["num_images"] == len(tiny_val) and trainer.model.calls == calls  # validation: the raw one

    assert not any(key.startswith("module.") for key in trainer.state()["discriminator"]["state_dict"])
    assert trainer.model_spec() == {"name": "unet-small", "options": {"width": 8}}


def test_the_trusted_share_counts_only_real_pixels_before_and_after_semi_start(tiny_train: TinyData) -> None:
    # threshold 0: D trusts every pixel (σ > 0), so the share of trusted *valid* pixels is exactly 1, even
    # with half of each unlabeled crop padding; semi_start 1: the first step logs it without the loss
    config = FAST.replace(adversarial_weight=0.01, semi_weight=0.1, semi_threshold=0.0, semi_start=1)
    trainer = build_trainer(config, classes=tiny_train.classes, in_channels=1, total_iterations=10)
    images, masks, (unlabeled, validity) = batches()
    validity[:, :, 8:] = tiny_train.classes.ignore_index
    before = trainer.train_step(images, masks, (unlabeled, validity))
    after = trainer.train_step(images, masks, (unlabeled, validity))
    assert "semi_loss" not in before and "semi_loss" in after
    assert before["semi_fraction"] == after["semi_fraction"] == 1.0


def test_the_step_logs_numbers_that_stay_on_the_device(tiny_train: TinyData) -> None:
    """Reading a number off a GPU waits for it: the step hands back tensors, read once per epoch by fit."""
    config = FAST.replace(adversarial_weight=0.01, semi_weight=0.1, grad_clip=1.0)
    trainer = build_trainer(config, classes=tiny_train.classes, in_channels=1, total_iterations=10)
    stats = trainer.train_step(*batches())
    for key in ("loss", "supervised_loss", "adversarial_loss", "semi_loss", "grad_norm", "discriminator_loss"):
        assert isinstance(stats[key], torch.Tensor) and stats[key].ndim == 0 and not stats[key].requires_grad, key
    assert float(stats["loss"]) > float(stats["supervised_loss"])  # the labeled and the unlabeled terms


@pytest.mark.parametrize("has_bf16", [False, True])
def test_amp_on_the_cpu_uses_bfloat16_only_where_the_cpu_has_it(
    tiny_train: TinyData, monkeypatch: pytest.MonkeyPatch, has_bf16: bool
) -> None:
    import pixelwise.hardware

    monkeypatch.setattr(pixelwise.hardware, "cpu_has_bf16", lambda: has_bf16)
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    trainer_module.logger.addHandler(handler)
    try:
        trainer = build_trainer(
            FAST.replace(amp=True, device="cpu"), classes=tiny_train.classes, in_channels=1, total_iterations=4
        )
    finally:
        trainer_module.logger.removeHandler(handler)
    assert not trainer.scaler.is_enabled()  # bfloat16 has float32's range: nothing to scale
    if has_bf16:
        assert trainer.amp_dtype == torch.bfloat16 and messages == []
        with trainer.networks().autocast():
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    else:
        assert trainer.amp_dtype is None
        assert len(messages) == 1 and messages[0].startswith("amp: this CPU has no bfloat16 instructions")
        assert messages[0].endswith("training in float32")
        with trainer.networks().autocast():
            assert not torch.is_autocast_enabled("cpu")
    stats = trainer.train_step(*batches()[:2])
    assert torch.isfinite(torch.as_tensor(stats["loss"]))
    # on CUDA it is float16 (with a gradient scaler), whatever the CPU
    assert pixelwise.hardware.autocast_dtype(torch.device("cuda")) == torch.float16
