"""Writing checkpoints, atomically. The format and the reading are ``pixelwise.checkpoint``'s.

``best.pt`` holds what prediction needs (the keys listed in ``pixelwise.checkpoint``); ``last.pt`` adds what
resuming needs: ``optimizer``, ``scheduler``, ``scaler``, ``iteration``, ``rng``, ``early_stopping``,
``history`` and ``discriminator`` (its weights, optimizer and scheduler).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pixelwise.checkpoint import FORMAT
from pixelwise.files import atomic_path


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: an interrupted save leaves the previous file intact."""
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return target
