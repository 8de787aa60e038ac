"""What a predictor must know about a trained network, whatever runs it (PyTorch now, ONNX Runtime next).

An ``InferenceSpec`` is read from a ``.pt`` checkpoint (``InferenceSpec.from_checkpoint``) and, as a plain
JSON-ready dict (``to_dict`` / ``from_dict``), fits in any file's metadata: an exported ONNX model carries
the same description as the checkpoint it came from. numpy and the standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pixelwise.checkpoint import DEFAULT_TILE_SIZE
from pixelwise.data.bands import InputBands
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    from pixelwise.checkpoint import Checkpoint

FORMAT = "pixelwise-inference/1"
_FIELDS = ("model", "classes", "mean", "std", "in_channels", "tile_size", "stride")


@dataclass(frozen=True, kw_only=True)
class InferenceSpec:
    """A trained network as a predictor sees it.

    ``model``: the architecture's name (for the record). ``classes``: what each output channel means.
    ``mean`` / ``std``: per-channel standardisation of [0, 1] inputs, as in training. ``in_channels``: the
    channels it reads (1 grey, 3 RGB, or its bands). ``tile_size``: the size it was trained on, the predictor's
    default tile. ``stride``: the network pads its input to a multiple of this; tiles that are a multiple need
    no padding inside it. ``mpp``: the resolution (microns per pixel) of the training images, where known:
    prediction reads the pyramid level nearest it (``data.pyramid``). ``input_bands``: how its images are read
    from files (``data.bands``: the band selection, the no-data value, the training set's per-band ranges);
    None: grey or RGB read as always.

    >>> spec = InferenceSpec(model="unet", classes=ClassSpec.default(2), mean=(0.5,), std=(0.25,), in_channels=1)
    >>> InferenceSpec.from_dict(spec.to_dict()) == spec
    True
    """

    model: str
    classes: ClassSpec
    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_channels: int
    tile_size: int = DEFAULT_TILE_SIZE
    stride: int = 1
    mpp: float | None = None
    input_bands: InputBands | None = None

    def __post_init__(self) -> None:
        # sequences from JSON or YAML arrive as lists; keep the frozen spec hashable and immutable
        object.__setattr__(self, "mean", tuple(float(value) for value in self.mean))
        object.__setattr__(self, "std", tuple(float(value) for value in self.std))
        for label, value in (
            ("input channels", self.in_channels),
            ("tile size", self.tile_size),
            ("stride", self.stride),
        ):
            _check_positive(value, label)
        if not isinstance(self.classes, ClassSpec):
            raise PixelwiseError(f"classes must be a ClassSpec, got {type(self.classes).__name__}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise PixelwiseError(
                f"normalisation has {len(self.mean)} means and {len(self.std)} stds for {self.in_channels} "
                "input channels; give one of each per channel"
            )
        bands = self.input_bands
        if bands is not None and not isinstance(bands, InputBands):
            raise PixelwiseError(f"input_bands must be an InputBands, got {type(bands).__name__}")
        for label, count in (
            ("bands chosen", len(bands.selection) if bands is not None and bands.selection else None),
            ("band ranges", len(bands.ranges.low) if bands is not None and bands.ranges is not None else None),
        ):
            if count is not None and count != self.in_channels:
                raise PixelwiseError(f"{count} {label} for {self.in_channels} input channels; give one per channel")
        if not all(value > 0 for value in self.std):
            raise PixelwiseError(
                f"normalisation std {list(self.std)} must be positive; fix the checkpoint or the values"
            )

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: strings, numbers and lists only, with a ``format`` key for ``from_dict`` to check."""
        return {
            "format": FORMAT,
            "model": self.model,
            "classes": self.classes.to_dict(),
            "mean": list(self.mean),
            "std": list(self.std),
            "in_channels": self.in_channels,
            "tile_size": self.tile_size,
            "stride": self.stride,
            # written only when set: a spec without them reads in an older pixelwise
            **({"mpp": self.mpp} if self.mpp is not None else {}),
            **({"input_bands": self.input_bands.to_dict()} if self.input_bands is not None else {}),
        }

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "inference spec") -> InferenceSpec:
        """The spec ``to_dict`` wrote; anything else is a PixelwiseError naming ``source`` (e.g. the file)."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise PixelwiseError(
                f"{source}: not a pixelwise inference spec (format {found!r}, expected {FORMAT!r}); "
                "export the model again with this pixelwise"
            )
        missing = [key for key in _FIELDS if key not in raw]
        if missing:
            raise PixelwiseError(f"{source}: the inference spec lacks {missing}; export the model again")
        try:
            return cls(
                model=str(raw["model"]),
                classes=ClassSpec.from_dict(raw["classes"], source=source),
                mean=tuple(float(value) for value in raw["mean"]),
                std=tuple(float(value) for value in raw["std"]),
                in_channels=raw["in_channels"],
                tile_size=raw["tile_size"],
                stride=raw["stride"],
                mpp=float(raw["mpp"]) if raw.get("mpp") is not None else None,
                input_bands=InputBands.from_dict(raw["input_bands"]) if raw.get("input_bands") is not None else None,
            )
        except PixelwiseError as error:
            message = str(error)
            raise PixelwiseError(message if message.startswith(source) else f"{source}: {message}") from None
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise PixelwiseError(
                f"{source}: malformed inference spec ({error.__class__.__name__}: {error}); export the model again"
            ) from None

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint | str | os.PathLike[str]) -> InferenceSpec:
        """The spec of a ``pixelwise train`` checkpoint (its record, a ``.pt`` file or a run folder).

        ``tile_size`` falls back to 256 and ``stride`` is derived from the architecture where an older file
        lacks them. A missing, corrupt or malformed file is a PixelwiseError naming it.
        """
        from pixelwise.checkpoint import Checkpoint, load_checkpoint, reading, stride_from_checkpoint

        loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        with reading(loaded.source):
            return cls(
                model=loaded.model,
                classes=loaded.classes,
                mean=loaded.normalization.mean,
                std=loaded.normalization.std,
                in_channels=loaded.in_channels,
                tile_size=loaded.tile_size,
                stride=stride_from_checkpoint(loaded),
                mpp=loaded.mpp,
                input_bands=loaded.input_bands,
            )


def _check_positive(value: object, label: str) -> None:
    """Counts are ints ≥ 1 (``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PixelwiseError(f"{label} must be a positive integer, got {value!r}")
