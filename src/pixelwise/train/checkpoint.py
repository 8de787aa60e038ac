"""What ``last.pt`` adds to a checkpoint so that a run can continue exactly: ``ResumeState``.

A ``last.pt`` is a ``pixelwise.checkpoint.Checkpoint`` (written and read there) whose ``extra`` holds these
keys: ``optimizer``, ``scheduler``, ``scaler``, ``iteration`` (the segmenter's), ``discriminator`` (its
weights, optimizer, scheduler, scaler and shape, when the run trained one), ``rng`` (every process's
generator states, in rank order), ``history`` (one record per epoch), ``early_stopping`` and, in a run with
a time budget, ``budget`` (its plan and the seconds used). ``best.pt`` has none of them. Training code only: prediction never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    from pixelwise.checkpoint import Checkpoint


@dataclass(frozen=True, kw_only=True, eq=False)
class ResumeState:
    """Everything that moves during training besides the segmenter's weights (see the module)."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] = field(default_factory=dict)  # empty: no gradient scaler's state
    iteration: int
    discriminator: dict[str, Any] | None = None
    rng: list[dict[str, Any]] | dict[str, Any]  # per process; a single dict in files from before torchrun
    history: list[dict[str, Any]] = field(default_factory=list)
    early_stopping: dict[str, Any]
    budget: dict[str, Any] | None = None  # with ``time``: the plan and the seconds used (``train.budget``)

    def to_payload(self) -> dict[str, Any]:
        """The keys this adds to a checkpoint file (``Checkpoint.extra``)."""
        payload: dict[str, Any] = {
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "iteration": self.iteration,
        }
        if self.discriminator is not None:
            payload["discriminator"] = self.discriminator
        payload.update(rng=self.rng, history=self.history, early_stopping=self.early_stopping)
        if self.budget is not None:
            payload["budget"] = self.budget
        return payload

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> ResumeState:
        """The resuming state of a ``last.pt``; a checkpoint without it (a ``best.pt``) is a PixelwiseError."""
        extra = checkpoint.extra
        missing = [key for key in ("optimizer", "scheduler", "iteration", "rng", "early_stopping") if key not in extra]
        if missing:
            raise PixelwiseError(
                f"{checkpoint.source}: holds no training state to resume from (it lacks {missing}); resume from "
                "the run folder's last.pt"
            )
        return cls(
            optimizer=extra["optimizer"],
            scheduler=extra["scheduler"],
            scaler=extra.get("scaler") or {},
            iteration=int(extra["iteration"]),
            discriminator=extra.get("discriminator"),
            rng=extra["rng"],
            history=list(extra.get("history") or []),
            early_stopping=extra["early_stopping"],
            budget=extra.get("budget"),
        )
