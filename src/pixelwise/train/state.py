"""Where a run stands, and what lets it continue exactly: the checkpoints it saves, RNG states, resume checks,
and the switch to deterministic kernels.

``best.pt`` holds what prediction needs (``prediction_checkpoint``); ``last.pt`` adds everything that moves
during training (``resume_checkpoint``, a ``ResumeState``): optimizers, schedulers, gradient scalers, the
discriminator, the iteration count, the RNG states of every process, the history and the early-stopping
counters. Restoring
all of them makes 1 epoch + resume 1 epoch give the same weights as 2 epochs straight (tests/train/test_loop.py,
and under torchrun tests/train/test_torchrun.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from pixelwise.checkpoint import Checkpoint, Normalization
from pixelwise.data.bands import InputBands
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.train.checkpoint import ResumeState
from pixelwise.train.config import TrainConfig
from pixelwise.train.trainer import Trainer
from pixelwise.versions import library_versions

logger = logging.getLogger(__name__)

# settings that may change between the sessions of one run; any other change is allowed but logged
RESUMABLE_CHANGES = frozenset(
    {"epochs", "patience", "min_delta", "num_workers", "device", "deterministic", "process_timeout", "time"}
)


def score(record: dict[str, Any]) -> float:
    """How good an epoch's record is, higher is better: the validation mIoU, or minus the training loss
    when there is no validation set; NaN counts as the worst.

    >>> score({"val_miou": 0.5, "train_loss": 0.1}), score({"train_loss": 0.25}), score({"val_miou": float("nan")})
    (0.5, -0.25, -inf)
    """
    value = record.get("val_miou")
    if value is None:
        value = -float(record.get("train_loss", math.inf))
    return -math.inf if value is None or math.isnan(value) else float(value)


@dataclass
class RunState:
    """The per-epoch records and the early-stopping counters; ``last.pt`` keeps them for resuming."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    @classmethod
    def from_resume(cls, resume: ResumeState) -> RunState:
        """Where a saved run stood (``last.pt``'s history and counters)."""
        stopping = resume.early_stopping
        return cls(
            history=list(resume.history),
            best_score=float(stopping["best_score"]),
            best_epoch=int(stopping["best_epoch"]),
            bad_epochs=int(stopping["bad_epochs"]),
        )

    def add(self, record: dict[str, Any], *, min_delta: float) -> bool:
        """Append an epoch's record; True when it is the best so far (the first epoch always is)."""
        self.history.append(record)
        value = score(record)
        improved = value > self.best_score + min_delta or record["epoch"] == 1
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = value, int(record["epoch"]), 0
        else:
            self.bad_epochs += 1
        return improved

    def should_stop(self, patience: int) -> bool:
        """``patience`` epochs in a row without improvement (never with patience 0)."""
        return patience > 0 and self.bad_epochs >= patience

    def early_stopping(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}


# --- checkpoints ------------------------------------------------------------------------------------------


def prediction_checkpoint(
    trainer: Trainer,
    *,
    epoch: int,
    metrics: Mapping[str, Any],
    normalization: Mapping[str, Sequence[float]],
    in_channels: int,
    input_bands: InputBands | None = None,
) -> Checkpoint:
    """``best.pt``: the raw segmenter's spec and weights and what the predictor needs around them
    (``input_bands``: how the training images were read, ``data.bands``)."""
    spec = trainer.model_spec()
    return Checkpoint(
        model=spec["name"],
        model_options=spec["options"],
        state_dict=trainer.raw_model.state_dict(),
        classes=trainer.classes,
        normalization=Normalization.from_dict(normalization),
        in_channels=in_channels,
        input_bands=input_bands,
        tile_size=trainer.config.tile_size,
        stride=int(getattr(trainer.raw_model, "stride", 1)),
        config=trainer.config.to_dict(),
        metrics=metrics,
        versions=library_versions(),
        epoch=epoch,
    )


def resume_checkpoint(
    trainer: Trainer,
    run: RunState,
    *,
    rng: list[dict[str, Any]],
    budget: dict[str, Any] | None = None,
    **prediction: Any,
) -> Checkpoint:
    """``last.pt``: ``prediction_checkpoint(trainer, **prediction)`` plus everything that moves during training
    (a ``ResumeState`` in its ``extra``); ``rng``: the ``rng_state()`` of every process, in rank order;
    ``budget``: a time budget's plan and seconds used."""
    resume = ResumeState(
        **trainer.state(), rng=rng, history=run.history, early_stopping=run.early_stopping(), budget=budget
    )
    return replace(prediction_checkpoint(trainer, **prediction), extra=resume.to_payload())


def check_resume(checkpoint: Checkpoint, config: TrainConfig, classes: ClassSpec, in_channels: int) -> None:
    """Refuse a ``last.pt`` trained on other classes or channels; log the settings that changed since."""
    if checkpoint.classes.to_dict() != classes.to_dict() or checkpoint.in_channels != in_channels:
        raise PixelwiseError(
            f"{checkpoint.source}: the run was trained on other classes or channels than this dataset; "
            "resume it with the same data, or start a new run"
        )
    # a run saved before a setting existed had that setting's default
    saved = {**TrainConfig().to_dict(), **checkpoint.config}
    changed = sorted(
        key for key, value in config.to_dict().items() if key not in RESUMABLE_CHANGES and saved.get(key) != value
    )
    if changed:
        logger.warning("resuming with changed settings: %s", ", ".join(changed))


# --- random number generators ----------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (weights, D's label smoothing, augmentation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's global generators' states (and ``device``'s, on a GPU), in plain types so that the
    checkpoint loads with weights_only=True."""
    numpy_state: tuple[Any, ...] = tuple(np.random.get_state())
    state = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *map(_plain, numpy_state[2:])],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":  # dropout and D's label smoothing draw from the GPU's generator there
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(
    saved: list[dict[str, Any]] | dict[str, Any], *, rank: int, world_size: int, device: torch.device
) -> None:
    """Put back the states ``rng_state`` saved for this process (``saved``: one per process, in rank order;
    a single dict in checkpoints from before torchrun training).

    Saved by another number of processes, the per-process streams cannot continue: each process keeps the
    fresh stream it was seeded with, and the run goes on, no longer bitwise the one it would have been.
    """
    states = saved if isinstance(saved, list) else [saved]
    if len(states) != world_size:
        if rank == 0:
            logger.warning(
                "resuming on %d processes a run saved by %d: random streams start afresh (not bitwise the same run)",
                world_size,
                len(states),
            )
        return
    state = states[rank]
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(position), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextlib.contextmanager
def deterministic_kernels(enabled: bool) -> Iterator[None]:
    """Within the block (when ``enabled``), torch picks deterministic kernels, so that a seed repeats bitwise on
    a GPU too: ``torch.use_deterministic_algorithms`` (warn-only), cuDNN deterministic without autotuning,
    and the cuBLAS workspace setting it needs. Everything is put back afterwards.

    On the CPU training repeats bitwise without it. On CUDA, a few operations have no deterministic kernel
    (the backward passes of bilinear upsampling and of reflection padding, among others): torch warns once
    naming each, and the gradients through it may differ in the last bits from run to run.
    """
    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    # cuBLAS is deterministic only with a fixed workspace; read when its first handle is made
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        mode, warn_only, cudnn_deterministic, cudnn_benchmark, workspace = before
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_deterministic, cudnn_benchmark
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
