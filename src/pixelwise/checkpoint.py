"""Checkpoints: the ``Checkpoint`` record and its file, written and read here and nowhere else.

Prediction needs no training code, so nothing here imports ``train`` (what only resuming needs is the typed
extension ``pixelwise.train.checkpoint.ResumeState``); torch is imported when a file is read or written,
not with this module. A checkpoint file is the ``torch.save``d dict ``Checkpoint.to_payload()``:

========================  =====================================================================
key                       value (the record's field)
========================  =====================================================================
format                    ``"pixelwise-checkpoint/1"``
model                     ``{"name": str, "options": {...}}`` for ``models.create_model``
                          (``model``, ``model_options``)
state_dict                the segmenter's parameters and buffers
classes                   ``ClassSpec.to_dict()`` (``classes``: a ClassSpec)
normalization             ``{"mean": [...], "std": [...]}`` per channel, applied to [0, 1] images
                          (a ``Normalization``)
in_channels, tile_size    ints (``tile_size``: 256 where an older file lacks it)
stride                    int: the network pads its input to a multiple of this (absent in older
                          files: None in the record, and ``stride_from_checkpoint`` derives it)
input_bands               optional: ``InputBands.to_dict()`` (``data.bands``): the band selection,
                          the user's no-data value and the training set's per-band ranges, applied
                          again to every image predicted (``input_bands``; None: grey or RGB read
                          as before bands existed, the key absent)
config                    ``TrainConfig.to_dict()``
metrics                   the validation metrics of this checkpoint's epoch (JSON-ready)
mpp                       float, optional: microns per pixel of the training images, where the
                          dataset says it (prediction picks the pyramid level nearest it)
versions                  ``versions.library_versions()``
epoch                     epochs completed
digest                    ``"sha256:<hex>"`` of every other value (``payload_digest``), written at
                          save and verified at load: a file changed since (a bad copy, a failing
                          disk) is refused. Files written before it existed load with a note.
(any other key)           ``extra``: kept as it is, written back as it was. ``last.pt``'s resuming
                          state lives there (``ResumeState``), and so does a key of a newer pixelwise.
========================  =====================================================================

Both ways readable: a file loads here whatever keys it adds, and a file written here loads in an older
pixelwise, which reads the keys above by name and ignores the others. **A new field** (issue 20's ``mpp``,
the resolution a model was trained at; issue 21's band selection and per-band statistics) keeps that: a
record field whose default (None) means "not recorded", written by ``to_payload`` only when set, read by
``from_payload`` with ``raw.get``, and a row in the table above; files without it load unchanged.

Loading uses ``torch.load(weights_only=True)``: a checkpoint is data, and a file from elsewhere cannot run
code on load. Weights that are NaN or infinite (a run that diverged) are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.data.bands import InputBands
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    import torch

    from pixelwise.models.network import SegmentationNetwork

FORMAT = "pixelwise-checkpoint/1"
REQUIRED_KEYS = ("model", "state_dict", "classes", "normalization", "in_channels")
# the tile a predictor uses when a checkpoint does not say (files from before tile_size was stored)
DEFAULT_TILE_SIZE = 256
DIGEST = "sha256"
_GIVE = "give a best.pt or last.pt written by 'pixelwise train'"
# the payload keys the record's fields are written to; any other key is ``extra``
_FIELD_KEYS = frozenset(
    {"format", "model", "state_dict", "classes", "normalization", "in_channels", "tile_size", "stride", "input_bands"}
    | {"config", "metrics", "versions", "epoch", "digest", "path", "mpp"}
)


@dataclass(frozen=True)
class Normalization:
    """Per-channel standardisation of [0, 1] inputs, ``(x - mean) / std``, as the network was trained."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        # lists from a file or a caller: kept as tuples of floats, so the record stays immutable
        object.__setattr__(self, "mean", tuple(float(value) for value in self.mean))
        object.__setattr__(self, "std", tuple(float(value) for value in self.std))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Sequence[float]]) -> Normalization:
        return cls(tuple(raw["mean"]), tuple(raw["std"]))


@dataclass(frozen=True, kw_only=True, eq=False)  # weights do not compare as a whole
class Checkpoint:
    """A trained segmenter and everything a predictor (or a resumed run) needs around it; see the module.

    ``path`` is the file it was read from (None for one made in memory); ``digest`` the one stored in it
    (None when unsaved or older than digests). ``extra``: the payload's other keys, kept as they were.
    """

    model: str
    model_options: Mapping[str, Any] = field(default_factory=dict)
    state_dict: Mapping[str, Any]
    classes: ClassSpec
    normalization: Normalization
    in_channels: int
    tile_size: int = DEFAULT_TILE_SIZE
    stride: int | None = None
    input_bands: InputBands | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    epoch: int = 0
    mpp: float | None = None
    digest: str | None = None
    path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """What error messages call it: its file, or "checkpoint"."""
        return str(self.path) if self.path is not None else "checkpoint"

    def to_payload(self) -> dict[str, Any]:
        """The dict a checkpoint file holds (the table in the module), without the digest saving adds."""
        payload: dict[str, Any] = {
            "format": FORMAT,
            "model": {"name": self.model, "options": dict(self.model_options)},
            "state_dict": self.state_dict,
            "classes": self.classes.to_dict(),
            "normalization": self.normalization.to_dict(),
            "in_channels": self.in_channels,
            "tile_size": self.tile_size,
        }
        if self.stride is not None:
            payload["stride"] = self.stride
        if self.input_bands is not None:
            payload["input_bands"] = self.input_bands.to_dict()
        payload.update(
            config=dict(self.config), metrics=dict(self.metrics), versions=dict(self.versions), epoch=self.epoch
        )
        if self.mpp is not None:
            payload["mpp"] = self.mpp
        payload.update({key: value for key, value in self.extra.items() if key not in _FIELD_KEYS})
        return payload

    @classmethod
    def from_payload(cls, raw: Mapping[str, Any], *, path: str | os.PathLike[str] | None = None) -> Checkpoint:
        """The record of a checkpoint file's dict; a malformed value is a PixelwiseError naming ``path``."""
        with reading(str(path) if path is not None else "checkpoint"):
            model = raw["model"]
            stride = raw.get("stride")
            input_bands = raw.get("input_bands")
            return cls(
                model=str(model["name"]),
                model_options=dict(model.get("options") or {}),
                state_dict=raw["state_dict"],
                classes=ClassSpec.from_dict(raw["classes"], source=str(path or "checkpoint")),
                normalization=Normalization.from_dict(raw["normalization"]),
                in_channels=int(raw["in_channels"]),
                tile_size=int(raw.get("tile_size") or DEFAULT_TILE_SIZE),
                stride=None if stride is None else int(stride),
                input_bands=None if input_bands is None else InputBands.from_dict(input_bands),
                config=dict(raw.get("config") or {}),
                metrics=dict(raw.get("metrics") or {}),
                versions=dict(raw.get("versions") or {}),
                epoch=int(raw.get("epoch") or 0),
                mpp=None if raw.get("mpp") is None else float(raw["mpp"]),
                digest=raw.get("digest"),
                path=None if path is None else Path(path),
                extra={key: value for key, value in raw.items() if key not in _FIELD_KEYS},
            )


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (an interrupted save leaves the previous file intact), with
    the ``digest`` that loading verifies."""
    return write_payload(path, checkpoint.to_payload())


def write_payload(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write a checkpoint file's dict as it is, with ``format`` first and the ``digest`` last: what
    ``save_checkpoint`` does with a record, open to tools and tests that must write what a record would not."""
    import torch

    from pixelwise.files import atomic_path

    target = Path(path)
    content = {"format": FORMAT, **{key: value for key, value in payload.items() if key not in ("digest", "path")}}
    content["digest"] = payload_digest(content)
    with atomic_path(target) as tmp:
        torch.save(content, tmp)
    return target


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a pixelwise checkpoint; a missing, corrupt, foreign or malformed file is a PixelwiseError naming it.

    ``path`` is a ``.pt`` file or a run folder (its ``best.pt``, else its ``last.pt``); the record's
    ``path`` is the file actually read.
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
        raw = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises a zoo of types for truncated or foreign files
        raise PixelwiseError(f"{file}: {_unreadable_reason(file, error)}; {_GIVE}") from None
    if not isinstance(raw, dict) or not str(raw.get("format", "")).startswith("pixelwise-checkpoint/"):
        raise PixelwiseError(f"{file}: not a pixelwise checkpoint (no 'format' key); {_GIVE}")
    if raw["format"] != FORMAT:
        raise PixelwiseError(f"{file}: checkpoint format {raw['format']!r}, this pixelwise reads {FORMAT!r}; upgrade")
    _check_integrity(raw, file)
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise PixelwiseError(f"{file}: checkpoint lacks {missing}; it is damaged, train again or use another file")
    return Checkpoint.from_payload(raw, path=file)


@contextlib.contextmanager
def reading(source: str) -> Iterator[None]:
    """Errors while reading a checkpoint's content become one PixelwiseError that names ``source`` (its file).

    A malformed value (a missing key, a string where a number belongs) is a KeyError or TypeError deep
    inside; the user needs the file and what to do instead.
    """
    try:
        yield
    except PixelwiseError as error:
        message = str(error)
        raise PixelwiseError(message if message.startswith(source) else f"{source}: {message}") from None
    except KeyError as error:
        raise PixelwiseError(f"{source}: malformed checkpoint: it has no entry {error}; {_GIVE}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise PixelwiseError(f"{source}: malformed checkpoint: {_first_words(str(error))}; {_GIVE}") from None


def model_from_checkpoint(checkpoint: Checkpoint | str | os.PathLike[str]) -> SegmentationNetwork:
    """Rebuild the segmenter from a checkpoint (record or path), load its weights, switch to eval mode.

    Never touches pretrained weights: ``encoder_weights`` is None, the state dict carries everything.
    """
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    model = _architecture(loaded)
    try:
        model.load_state_dict(loaded.state_dict)
    except RuntimeError as error:
        raise PixelwiseError(
            f"{loaded.source}: the weights do not fit model {loaded.model!r} "
            f"({_first_words(str(error))}); the file is damaged or from another version"
        ) from None
    return model.eval()


def stride_from_checkpoint(checkpoint: Checkpoint) -> int:
    """The multiple the network pads its input to: stored in checkpoints since it was added, and derived
    for older ones by building the architecture on torch's meta device (no memory, no weights, no data)."""
    if checkpoint.stride is not None:
        return checkpoint.stride
    import torch

    with torch.device("meta"):
        return int(_architecture(checkpoint).stride)


def _architecture(checkpoint: Checkpoint) -> SegmentationNetwork:
    """The checkpoint's network with fresh (untrained) weights."""
    from pixelwise.models.registry import create_model

    with reading(checkpoint.source):
        return create_model(
            checkpoint.model,
            **checkpoint.model_options,
            num_classes=checkpoint.classes.num_classes,
            in_channels=checkpoint.in_channels,
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
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not _finite(tensor)
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


def _finite(tensor: torch.Tensor) -> bool:
    """Whether every value is finite. In numpy where it can: torch's isfinite opens its OpenMP pool for each
    of a checkpoint's hundreds of small tensors, which took 4 s on two busy cores (0.15 s in numpy)."""
    import numpy as np
    import torch

    if tensor.dtype in (torch.float16, torch.float32, torch.float64) and tensor.device.type == "cpu":
        return bool(np.isfinite(tensor.detach().numpy()).all())
    return bool(tensor.isfinite().all())
