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
mpp                       float, optional: microns per pixel of the training images, where the
                          dataset says it (prediction picks the pyramid level nearest it)
versions                  ``versions.library_versions()``
epoch                     epochs completed
digest                    ``"sha256:<hex>"`` of every other value (``payload_digest``), written at
                          save and verified at load: a file changed since (a bad copy, a failing
                          disk) is refused. Files written before it existed load with a note.
========================  =====================================================================

``last.pt`` adds what resuming needs (see ``pixelwise.train.checkpoint``). Loading uses
``torch.load(weights_only=True)``: a checkpoint is data, and a file from elsewhere cannot run code on load.
Weights that are NaN or infinite (a run that diverged) are refused. torch is imported when a file is read,
not with this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

    from pixelwise.models.network import SegmentationNetwork

FORMAT = "pixelwise-checkpoint/1"
REQUIRED_KEYS = ("model", "state_dict", "classes", "normalization", "in_channels")
DIGEST = "sha256"
_GIVE = "give a best.pt or last.pt written by 'pixelwise train'"


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
        raise PixelwiseError(f"{file}: {_unreadable_reason(file, error)}; {_GIVE}") from None
    if not isinstance(checkpoint, dict) or not str(checkpoint.get("format", "")).startswith("pixelwise-checkpoint/"):
        raise PixelwiseError(f"{file}: not a pixelwise checkpoint (no 'format' key); {_GIVE}")
    if checkpoint["format"] != FORMAT:
        raise PixelwiseError(
            f"{file}: checkpoint format {checkpoint['format']!r}, this pixelwise reads {FORMAT!r}; upgrade"
        )
    _check_integrity(checkpoint, file)
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
    except KeyError as error:
        raise PixelwiseError(f"{source}: malformed checkpoint: it has no entry {error}; {_GIVE}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise PixelwiseError(f"{source}: malformed checkpoint: {_first_words(str(error))}; {_GIVE}") from None


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
            f"({_first_words(str(error))}); the file is damaged or from another version"
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


# --- integrity ---------------------------------------------------------------------------------------------


def payload_digest(payload: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` over every value of ``payload`` but ``digest`` and ``path``, in the payload's order:
    tensors (and arrays) by dtype, shape and bytes, other values by ``repr`` (lists and tuples alike, since
    unpickling may turn one into the other). The same payload gives the same digest after a save and a load.
    """
    hasher = hashlib.sha256()
    _feed(hasher, {key: value for key, value in payload.items() if key not in ("digest", "path")})
    return f"{DIGEST}:{hasher.hexdigest()}"


def _feed(hasher: Any, value: Any) -> None:
    import numpy as np
    import torch

    if isinstance(value, Mapping):
        hasher.update(b"{")
        for key, item in value.items():
            hasher.update(repr(key).encode() + b":")
            _feed(hasher, item)
        hasher.update(b"}")
    elif isinstance(value, (list, tuple)):
        hasher.update(b"[")
        for item in value:
            _feed(hasher, item)
        hasher.update(b"]")
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        hasher.update(f"array {array.dtype} {array.shape}".encode())
        hasher.update(array.view(np.uint8).data)
    else:
        hasher.update(repr(value).encode())
    hasher.update(b";")


def _check_integrity(checkpoint: dict[str, Any], file: Path) -> None:
    """The digest written at save must match the content; the segmenter's weights must be finite."""
    import torch

    stored = checkpoint.get("digest")
    if stored is None:
        warnings.warn(
            f"{file} was written before checkpoints carried a digest, so it cannot be checked for damage; "
            "it loads as it is",
            UserWarning,
            stacklevel=3,
        )
    elif stored != payload_digest(checkpoint):
        raise PixelwiseError(
            f"{file}: damaged: its content no longer matches the digest written when it was saved "
            "(a bad copy or a failing disk); use another copy or train again"
        )
    weights = checkpoint.get("state_dict")
    if isinstance(weights, Mapping):
        bad = [
            name
            for name, tensor in weights.items()
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(tensor.isfinite().all())
        ]
        if bad:
            raise PixelwiseError(
                f"{file}: {len(bad)} of {len(weights)} weight tensors hold NaN or infinite values (first: {bad[0]}); "
                "the training diverged: use an earlier checkpoint or train again with a lower --lr"
            )


def _unreadable_reason(file: Path, error: BaseException) -> str:
    """What a failed ``torch.load`` means, in words: torch's own messages carry codes, terminal escapes and
    advice about ``weights_only`` that do not apply to a user of pixelwise."""
    size = file.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    if "Unsupported global" in str(error) or "Unsupported class" in str(error):
        return (
            "it holds Python objects, not only weights (e.g. a whole model saved with torch.save), and was "
            "not loaded because loading it could run code"
        )
    with open(file, "rb") as handle:
        zipped = handle.read(4) == b"PK\x03\x04"  # torch's format since 1.6 is a zip archive
    if zipped:
        return f"the file is truncated or damaged (its archive of {size:,} bytes cannot be read)"
    return "not a PyTorch checkpoint (neither torch's zip format nor its older one)"


def _first_words(text: str, limit: int = 120) -> str:
    """The first line of a library's message, cut at a word boundary (with "...") when longer than ``limit``."""
    line = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " ..."
