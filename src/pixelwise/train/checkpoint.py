"""Writing checkpoints, atomically and with a digest. The format and the reading are ``pixelwise.checkpoint``'s.

``best.pt`` holds what prediction needs (the keys listed in ``pixelwise.checkpoint``); ``last.pt`` adds what
resuming needs: ``optimizer``, ``scheduler``, ``scaler``, ``iteration``, ``rng``, ``early_stopping``,
``history`` and ``discriminator`` (its weights, optimizer and scheduler).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pixelwise.checkpoint import FORMAT, payload_digest
from pixelwise.files import atomic_path


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (an interrupted save leaves the previous file intact), with
    ``format`` and the ``digest`` that loading verifies."""
    target = Path(path)
    content = {"format": FORMAT, **payload}
    content["digest"] = payload_digest(content)
    with atomic_path(target) as tmp:
        torch.save(content, tmp)
    return target
