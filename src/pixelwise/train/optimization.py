"""How the networks learn: the optimizer and the learning-rate schedule, from the config."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from pixelwise.train.config import TrainConfig


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD over ``model``'s trainable parameters; no weight decay on norms and biases (decaying them
    only fights the normalisation)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def learning_rate_factor(
    config: TrainConfig, total_iterations: int, *, warmup: int | None = None
) -> Callable[[int], float]:
    """The multiplier of the base lr after ``step`` iterations: linear warm-up from 1/10, then poly or cosine.

    ``warmup`` overrides ``config.warmup_iterations`` (D's schedule has none).

    >>> factor = learning_rate_factor(TrainConfig(schedule="poly", poly_power=1.0), 10)
    >>> [round(factor(step), 2) for step in (0, 5, 10)]
    [1.0, 0.5, 0.0]
    """
    warmup = min(config.warmup_iterations if warmup is None else warmup, max(total_iterations - 1, 0))

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
