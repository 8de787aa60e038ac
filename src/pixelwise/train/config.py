"""TrainConfig: every training setting in one flat, frozen dataclass.

A YAML file (``--config run.yaml``) and command-line flags override the defaults, in that order; the
resolved config is saved as ``config.yaml`` in the run folder and inside every checkpoint. Supervised,
adversarial and semi-supervised training are the same config with different weights:

>>> supervised = TrainConfig()
>>> adversarial = supervised.replace(adversarial_weight=0.01)
>>> semi = adversarial.replace(semi_weight=0.1, labeled_fraction=0.125)
>>> semi.uses_discriminator, supervised.uses_discriminator
(True, False)
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pixelwise.errors import PixelwiseError

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("poly", "cosine", "constant")
LOSSES = ("ce", "dice", "focal", "ce+dice")
NORMALIZATIONS = ("auto", "dataset", "imagenet")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run. Iteration counts are optimizer steps of the segmenter."""

    # model
    model: str = "unet-small"
    encoder: str | None = None  # None: the model's default encoder
    encoder_weights: str | None = None  # "imagenet" (offline, efficientnet-lite0) or a .pth path
    # schedule of the run
    epochs: int = 30
    iterations_per_epoch: int = 0  # 0: one pass over the labeled images; N: N batches, cycling (small sets)
    batch_size: int = 8
    crop_size: int = 128  # training crops; validation always sees whole images
    tile_size: int = 256  # the tile the predictor uses by default, stored in the checkpoint
    # optimisation
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    schedule: str = "poly"
    poly_power: float = 0.9
    warmup_iterations: int = 0  # linear ramp from lr/10 to lr over this many iterations
    grad_clip: float = 0.0  # max global gradient norm of the segmenter; 0: no clipping
    loss: str = "ce"
    class_weights: tuple[float, ...] | None = None
    dice_weight: float = 1.0  # the Dice term's weight in "ce+dice"
    focal_gamma: float = 2.0
    # augmentation (training crops only)
    scale_range: tuple[float, float] = (0.75, 1.25)
    rotation: float = 10.0  # degrees, uniform in [-rotation, rotation]
    horizontal_flip: bool = True
    vertical_flip: bool = False
    color_jitter: float = 0.2  # brightness, contrast (and saturation for RGB) vary by ± this fraction
    normalization: str = "auto"  # auto: ImageNet statistics with a pretrained encoder, else the training set's
    # early stopping on the validation mIoU (the training loss when there is no validation set)
    patience: int = 10  # epochs without improvement before stopping; 0: never stop early
    min_delta: float = 0.0
    # reproducibility and speed
    seed: int = 0
    num_workers: int = 0
    channels_last: bool = True
    amp: bool = False  # float16 + gradient scaler on CUDA; bfloat16 on the CPU trains 13x slower (bench)
    device: str = "auto"
    # adversarial and semi-supervised training (Hung et al. 2018); all weights 0: plain supervised
    adversarial_weight: float = 0.0  # λ_adv: BCE(D(P), 1) on labeled images
    adversarial_weight_unlabeled: float = 0.001  # λ_adv,u: the same term on unlabeled images
    semi_weight: float = 0.0  # λ_semi: CE against argmax P_u where D is confident
    semi_threshold: float = 0.2  # T_semi on σ(D(P_u))
    semi_start: int = 0  # iterations of warm-up before the semi-supervised term switches on
    labeled_fraction: float = 1.0  # keep the labels of this fraction of the training set (seeded)
    discriminator_lr: float = 1e-4
    discriminator_betas: tuple[float, float] = (0.9, 0.99)
    discriminator_image: bool = False  # condition D on the image too (Luc et al. 2016)
    discriminator_real_label: float = 1.0  # < 1: one-sided label smoothing of D's "real" target
    discriminator_real_smoothing: float = 0.0  # real maps: the true class gives e ~ U(0, this) to the others
    discriminator_base_channels: int = 64  # width of D's first layer (64 in the paper); less is faster

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise PixelwiseError("; ".join(problems))

    def _problems(self) -> typing.Iterator[str]:
        def choice(name: str, allowed: tuple[str, ...]) -> typing.Iterator[str]:
            if getattr(self, name) not in allowed:
                yield f"{name} is {getattr(self, name)!r}; choose one of {', '.join(allowed)}"

        yield from choice("optimizer", OPTIMIZERS)
        yield from choice("schedule", SCHEDULES)
        yield from choice("loss", LOSSES)
        yield from choice("normalization", NORMALIZATIONS)
        yield from choice("device", DEVICES)
        for name in ("epochs", "batch_size", "crop_size", "tile_size", "discriminator_base_channels"):
            if getattr(self, name) < 1:
                yield f"{name} must be at least 1, got {getattr(self, name)}"
        for name in ("iterations_per_epoch", "warmup_iterations", "patience", "num_workers", "semi_start", "seed"):
            if getattr(self, name) < 0:
                yield f"{name} must be 0 or more, got {getattr(self, name)}"
        positive: tuple[str, ...] = ("lr", "discriminator_lr", "poly_power")
        non_negative: tuple[str, ...] = ("weight_decay", "momentum", "grad_clip", "dice_weight", "focal_gamma")
        non_negative += ("rotation", "color_jitter", "min_delta", "adversarial_weight", "adversarial_weight_unlabeled")
        non_negative += ("semi_weight",)
        for name in positive + non_negative:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name in positive and value == 0):
                yield f"{name} must be {'positive' if name in positive else '0 or more'}, got {value}"
        if not 0 < self.labeled_fraction <= 1:
            yield f"labeled_fraction must be in (0, 1], got {self.labeled_fraction}"
        if not 0 <= self.semi_threshold < 1:
            yield f"semi_threshold must be in [0, 1), got {self.semi_threshold}"
        if not 0 <= self.discriminator_real_smoothing <= 1:
            yield f"discriminator_real_smoothing must be in [0, 1], got {self.discriminator_real_smoothing}"
        if not 0 < self.discriminator_real_label <= 1:
            yield f"discriminator_real_label must be in (0, 1], got {self.discriminator_real_label}"
        low, high = self.scale_range
        if not 0 < low <= high:
            yield f"scale_range must be (low, high) with 0 < low <= high, got {self.scale_range}"
        if not all(0 <= beta < 1 for beta in self.discriminator_betas):
            yield f"discriminator_betas must lie in [0, 1), got {self.discriminator_betas}"
        if self.color_jitter >= 1:
            yield f"color_jitter must be below 1 (a fraction), got {self.color_jitter}"
        if self.class_weights is not None and any(weight < 0 for weight in self.class_weights):
            yield f"class_weights must be 0 or more, got {self.class_weights}"

    @property
    def uses_discriminator(self) -> bool:
        """D is trained whenever an adversarial or a semi-supervised term needs it."""
        return self.adversarial_weight > 0 or self.semi_weight > 0

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with ``overrides`` applied; values are converted to the field types (strings from flags)."""
        return _build({**self.to_dict(), **overrides}, source="settings")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-ready values (tuples become lists)."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        return _build({**TrainConfig().to_dict(), **values}, source=source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        """Read a YAML mapping of field names to values; ``overrides`` (e.g. the CLI flags) win over it."""
        file = Path(path)
        try:
            raw = yaml.safe_load(file.read_text())
        except FileNotFoundError:
            raise PixelwiseError(f"{file}: no such config file; give the path of a YAML file") from None
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise PixelwiseError(f"{file}: not valid YAML ({error.__class__.__name__}); fix the file") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise PixelwiseError(f"{file}: expected a mapping of setting: value, e.g. 'epochs: 20'")
        unknown = sorted(set(raw) - _field_types().keys())
        if unknown:
            raise PixelwiseError(f"{file}: unknown settings {unknown}; valid ones: {', '.join(_field_types())}")
        return cls.from_dict({**raw, **overrides}, source=str(file))

    def save_yaml(self, path: str | os.PathLike[str]) -> None:
        from pixelwise.files import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _build(values: dict[str, Any], *, source: str) -> TrainConfig:
    types = _field_types()
    unknown = sorted(set(values) - types.keys())
    if unknown:
        raise PixelwiseError(f"{source}: unknown settings {unknown}; valid ones: {', '.join(types)}")
    converted = {name: _convert(name, value, types[name], source) for name, value in values.items()}
    return TrainConfig(**converted)


def _convert(name: str, value: Any, kind: Any, source: str) -> Any:
    """Turn ``value`` (from YAML or a flag string) into the field's type, or say which setting is wrong."""
    args = typing.get_args(kind)
    optional = type(None) in args
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        kind = next(arg for arg in args if arg is not type(None))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
                return value.lower() in ("true", "yes", "on", "1")
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if typing.get_origin(kind) is tuple:
            items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else list(value)
            inner = typing.get_args(kind)
            if len(inner) == 2 and inner[1] is Ellipsis:
                return tuple(float(item) for item in items)
            if len(items) != len(inner):
                raise ValueError
            return tuple(float(item) for item in items)
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"unhandled type {kind} for {name}")
    if typing.get_origin(kind) is tuple:
        count = len(typing.get_args(kind))
        expected = "a list of numbers" if Ellipsis in typing.get_args(kind) else f"a list of {count} numbers"
    else:
        expected = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[kind]
    raise PixelwiseError(f"{source}: {name} must be {expected}, got {value!r}")
