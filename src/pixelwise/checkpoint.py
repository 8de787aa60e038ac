"""Reading pixelwise checkpoints: safely, with one-line errors naming the file, into a model or its parts.

Reading lives here, apart from ``train``, so that prediction needs no training code; writing (and what only
resuming needs) stays in ``pixelwise.train.checkpoint``. A checkpoint is a ``torch.save``d dict:

========================  =====================================================================
key                       value
========================  =====================================================================
format                    ``"pixelwise-checkpoint/1"``
model                     ``{"name": str, "options": {...}}`` for ``models.create_model``
state_dict                the segmenter's parameters and buffers
classes                   ``ClassSpec.to_dict()``
normalization             ``{"mean": [...], "std": [...]}`` per channel, applied to [0, 1] images
in_channels, tile_size    ints
stride                    int: the network pads its input to a multiple of this (absent in older
                          files: ``stride_from_checkpoint`` derives it from the architecture)
config                    ``TrainConfig.to_dict()``
metrics                   the validation metrics of this checkpoint's epoch (JSON-ready)
versions                  ``versions.library_versions()``
epoch                     epochs completed
========================  =====================================================================

``last.pt`` adds what resuming needs (see ``pixelwise.train.checkpoint``). Loading uses
``torch.load(weights_only=True)``: a checkpoint is data, and a file from elsewhere cannot run code on load.
torch is imported when a file is read, not with this module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

    from pixelwise.models.network import SegmentationNetwork

FORMAT = "pixelwise-checkpoint/1"
REQUIRED_KEYS = ("model", "state_dict", "classes", "normalization", "in_channels")


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a pixelwise checkpoint; a missing, corrupt or foreign file is a PixelwiseError naming it.

    ``path`` is a ``.pt`` file or a run folder (its ``best.pt``, else its ``last.pt``); the returned dict
    has the file's keys plus ``path``, the file actually read.
    """
    import torch

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


@contextlib.contextmanager
def reading(checkpoint: dict[str, Any]) -> Iterator[None]:
    """Errors while reading a loaded checkpoint's content become one PixelwiseError that names its file.

    A malformed value (a missing key, a string where a number belongs) is a KeyError or TypeError deep
    inside; the user needs the file and what to do instead.
    """
    source = str(checkpoint.get("path", "checkpoint"))
    try:
        yield
    except PixelwiseError as error:
        message = str(error)
        raise PixelwiseError(message if message.startswith(source) else f"{source}: {message}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PixelwiseError(
            f"{source}: malformed checkpoint ({error.__class__.__name__}: {error}); "
            "give a best.pt or last.pt written by 'pixelwise train'"
        ) from None


def classes_from_checkpoint(checkpoint: dict[str, Any]) -> ClassSpec:
    with reading(checkpoint):
        return ClassSpec.from_dict(checkpoint["classes"], source=str(checkpoint.get("path", "checkpoint")))


def model_from_checkpoint(checkpoint: dict[str, Any] | str | os.PathLike[str]) -> SegmentationNetwork:
    """Rebuild the segmenter from a checkpoint (dict or path), load its weights, switch to eval mode.

    Never touches pretrained weights: ``encoder_weights`` is None, the state dict carries everything.
    """
    loaded = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    model = _architecture(loaded)
    try:
        model.load_state_dict(loaded["state_dict"])
    except RuntimeError as error:
        raise PixelwiseError(
            f"{loaded.get('path', 'checkpoint')}: the weights do not fit model {loaded['model']['name']!r} "
            f"({str(error).splitlines()[0][:120]}); the file is damaged or from another version"
        ) from None
    return model.eval()


def stride_from_checkpoint(checkpoint: dict[str, Any]) -> int:
    """The multiple the network pads its input to: stored in checkpoints since it was added, and derived
    for older ones by building the architecture on torch's meta device (no memory, no weights, no data)."""
    with reading(checkpoint):
        if "stride" in checkpoint:
            return int(checkpoint["stride"])
    import torch

    with torch.device("meta"):
        return int(_architecture(checkpoint).stride)


def _architecture(checkpoint: dict[str, Any]) -> SegmentationNetwork:
    """The checkpoint's network with fresh (untrained) weights."""
    from pixelwise.models.registry import create_model

    with reading(checkpoint):
        spec = checkpoint["model"]
        return create_model(
            spec["name"],
            **spec.get("options", {}),
            num_classes=classes_from_checkpoint(checkpoint).num_classes,
            in_channels=int(checkpoint["in_channels"]),
            encoder_weights=None,
        )
