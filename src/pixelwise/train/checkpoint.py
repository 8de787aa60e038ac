"""Checkpoints: written atomically, read safely, and carrying everything ``predict`` needs.

A checkpoint is a ``torch.save``d dict with the keys below. ``best.pt`` holds what prediction needs;
``last.pt`` adds what resuming needs (optimizers, schedulers, gradient scalers, RNG states, the
early-stopping state, the discriminator and its optimizer, the history).

========================  =====================================================================
key                       value
========================  =====================================================================
format                    ``"pixelwise-checkpoint/1"``
model                     ``{"name": str, "options": {...}}`` for ``models.create_model``
state_dict                the segmenter's parameters and buffers
classes                   ``ClassSpec.to_dict()``
normalization             ``{"mean": [...], "std": [...]}`` per channel, applied to [0, 1] images
in_channels, tile_size    ints
config                    ``TrainConfig.to_dict()``
metrics                   the validation metrics of this checkpoint's epoch (JSON-ready)
versions                  pixelwise, torch, torchvision, segmentation-models-pytorch, python
epoch                     epochs completed
========================  =====================================================================

Loading uses ``torch.load(weights_only=True)``: a checkpoint is data, and a file from elsewhere cannot
run code on load.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_path

FORMAT = "pixelwise-checkpoint/1"
REQUIRED_KEYS = ("model", "state_dict", "classes", "normalization", "in_channels")


def library_versions() -> dict[str, str]:
    """The versions that produced a checkpoint, for the record (nothing is refused on a mismatch)."""
    versions = {"python": platform.python_version()}
    for name in ("pixelwise", "torch", "torchvision", "segmentation-models-pytorch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: an interrupted save leaves the previous file intact."""
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return target


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a pixelwise checkpoint; a missing, corrupt or foreign file is a PixelwiseError naming it."""
    file = Path(path)
    if file.is_dir():
        for name in ("best.pt", "last.pt"):
            if (file / name).is_file():
                file = file / name
                break
        else:
            raise PixelwiseError(f"{file}: a folder without best.pt or last.pt; give a checkpoint file or a run folder")
    if not file.is_file():
        raise PixelwiseError(f"{file}: no such checkpoint; give the path of a .pt file written by 'pixelwise train'")
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises a zoo of types for truncated or foreign files
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else error.__class__.__name__
        raise PixelwiseError(
            f"{file}: not a readable pixelwise checkpoint ({reason}); give a best.pt or last.pt from 'pixelwise train'"
        ) from None
    if not isinstance(checkpoint, dict) or not str(checkpoint.get("format", "")).startswith("pixelwise-checkpoint/"):
        raise PixelwiseError(
            f"{file}: not a pixelwise checkpoint (no 'format' key); give a best.pt or last.pt from 'pixelwise train'"
        )
    if checkpoint["format"] != FORMAT:
        raise PixelwiseError(
            f"{file}: checkpoint format {checkpoint['format']!r}, this pixelwise reads {FORMAT!r}; upgrade"
        )
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise PixelwiseError(f"{file}: checkpoint lacks {missing}; it is damaged, train again or use another file")
    checkpoint["path"] = str(file)
    return checkpoint


def classes_from_checkpoint(checkpoint: dict[str, Any]) -> ClassSpec:
    return ClassSpec.from_dict(checkpoint["classes"], source=str(checkpoint.get("path", "checkpoint")))


def model_from_checkpoint(checkpoint: dict[str, Any] | str | os.PathLike[str]) -> nn.Module:
    """Rebuild the segmenter from a checkpoint (dict or path), load its weights, switch to eval mode.

    Never touches pretrained weights: ``encoder_weights`` is None, the state dict carries everything.
    """
    from pixelwise.models.registry import create_model

    loaded = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    spec = loaded["model"]
    model = create_model(
        spec["name"],
        **spec.get("options", {}),
        num_classes=classes_from_checkpoint(loaded).num_classes,
        in_channels=int(loaded["in_channels"]),
        encoder_weights=None,
    )
    try:
        model.load_state_dict(loaded["state_dict"])
    except RuntimeError as error:
        raise PixelwiseError(
            f"{loaded.get('path', 'checkpoint')}: the weights do not fit model {spec['name']!r} "
            f"({str(error).splitlines()[0][:120]}); the file is damaged or from another version"
        ) from None
    return model.eval()
