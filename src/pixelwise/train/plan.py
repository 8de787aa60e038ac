"""Training defaults planned from the data, as nnU-Net plans its runs from a dataset fingerprint.

A few settings had defaults that were guesses about data the run had not seen. ``fingerprint`` reads what
decides them from the training set (the image sizes from every file's header; the class shares and the
intensities from a sample of decoded images), and ``plan_training`` chooses, for each setting the user did
not give (a flag, ``--set`` or ``--config``):

- ``crop_size``: the median image side, to the nearest multiple of 32 (the encoders' stride), within
  32..512: a crop as large as a typical image sees all of its context without padding it (nnU-Net's 2D patch
  is the median shape too, shrunk to fit the memory). ``batch_size`` follows it, so that a step costs what
  8 crops of 128² cost (the defaults'), but, as nnU-Net's planner has it, a batch covers at most 5 % of the
  training pixels (a small set gets more, smaller steps in the same time); at least 2 (nnU-Net's least) and
  at most 32. Without validation images the pixels counted are those left after ``val_fraction`` is carved
  out for validation (``train.holdout``, which cuts its regions no smaller than the planned crop).
- ``loss``: ``ce+dice`` when a class is rare — below half the share it would have if the classes were
  balanced (1/K of the labelled pixels) — because cross-entropy alone lets a small class be outvoted
  (nnU-Net always trains Dice + CE); else ``ce``.
- ``normalization``: which statistics standardise the inputs, per channel; ``imagenet`` (the encoder's own)
  only for a pretrained encoder on 8-bit grey or RGB images, which look like its photographs; else
  ``dataset``, the training set's mean and std per channel (any band count). Values other than 8-bit are
  already made robust when read, by ``data.bands``'s rule (a 0.5th..99.5th percentile range: each grey or RGB
  image its own, or each band the training set's for multispectral, georeferenced or ``--bands`` images), as
  nnU-Net clips to those percentiles; the plan reads the images by that rule and leaves it alone. The plan
  names the statistic; computing it is ``train.data.normalization``'s.

What each step computes is the plan's; how many steps is not: ``epochs`` stays the user's (or its default),
and ``--time`` plans the iterations from the speed it measures with the planned crop and batch.

The plan is printed before training and written to ``data_plan.json`` in the run folder with the fingerprint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig

PLAN_FILE = "data_plan.json"
PLANNED = ("crop_size", "batch_size", "loss", "normalization")
SAMPLED_IMAGES = 32  # decoded for the class shares and the intensities, evenly spread over the set
SAMPLED_PIXELS = 65_536  # per image at most (a regular grid), so that large images cost what small ones do
CROP_STEP, SMALLEST_CROP, LARGEST_CROP = 32, 32, 512
STEP_PIXELS = 8 * 128 * 128  # what a step of the former defaults (8 crops of 128²) computes
SMALLEST_BATCH, LARGEST_BATCH = 2, 32
DATASET_SHARE = 0.05  # the most of the training pixels one batch may cover (nnU-Net's max_dataset_covered)
RARE = 0.5  # a class below this fraction of its balanced share (1/K) is rare


@dataclass(frozen=True)
class ChannelIntensity:
    """One channel's intensities as the network would see them before standardising ([0, 1] as read)."""

    low: float  # 0.5th percentile
    median: float
    high: float  # 99.5th percentile
    mean: float
    std: float


@dataclass(frozen=True)
class DatasetFingerprint:
    """What the plan is decided from: sizes of every training image, classes and intensities of a sample."""

    images: int
    median_size: tuple[int, int]  # (H, W)
    smallest_size: tuple[int, int]
    largest_size: tuple[int, int]
    pixels: int  # of all training images
    channels: int
    stored_types: tuple[str, ...]  # the sampled files' value types (uint8, uint16, int16, float32 ...)
    band_ranges: bool  # values scaled to [0, 1] per band by the training set's range (data.bands), not per image
    sampled: int  # images decoded for what follows
    class_shares: dict[str, float]  # share of the labelled (not ignored) pixels, by class name
    intensity: tuple[ChannelIntensity, ...]


@dataclass(frozen=True)
class PlannedSetting:
    """One setting of the plan: its value, why, and whether the user's own value was kept instead."""

    name: str
    value: Any
    reason: str
    given: bool = False


@dataclass(frozen=True)
class TrainingPlan:
    fingerprint: DatasetFingerprint
    settings: tuple[PlannedSetting, ...]

    def apply(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the planned values of the settings the user did not give."""
        return config.replace(**{setting.name: setting.value for setting in self.settings if not setting.given})

    def lines(self) -> list[str]:
        """The plan as printed: one line per setting, the user's own values said as kept."""
        fingerprint = self.fingerprint
        head = (
            f"plan from the data ({fingerprint.images} training images, {fingerprint.sampled} decoded; "
            "a flag, --set or --config overrides any line):"
        )
        width = max(len(f"{setting.name} {setting.value}") for setting in self.settings)
        return [head] + [
            f"  {f'{setting.name} {setting.value}'.ljust(width)}  "
            + (f"given (the data says {setting.reason})" if setting.given else setting.reason)
            for setting in self.settings
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": asdict(self.fingerprint),
            "settings": {setting.name: setting.value for setting in self.settings if not setting.given},
            "given": [setting.name for setting in self.settings if setting.given],
            "reasons": {setting.name: setting.reason for setting in self.settings},
        }

    def save(self, path: str | Path) -> None:
        from pixelwise.files import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def fingerprint(train: Any, *, sampled: int = SAMPLED_IMAGES) -> DatasetFingerprint:
    """The fingerprint of a labelled source (a ``SegmentationFolder``, or samples with ``.image`` and
    ``.mask`` plus ``classes``): sizes from the file headers when it has ``image_paths`` (else from the
    sample), the rest from ``sampled`` images evenly spread over it."""
    count = len(train)
    if count == 0:
        raise PixelwiseError("the training set is empty; give a dataset with images and masks")
    classes = train.classes
    chosen = sorted({int(index) for index in np.linspace(0, count - 1, min(sampled, count))})
    paths: Sequence[Path] | None = getattr(train, "image_paths", None)
    counts = np.zeros(classes.num_classes, dtype=np.int64)
    pixels: list[np.ndarray] = []
    sizes: list[tuple[int, int]] = []
    rasters = not getattr(getattr(train, "bands", None), "plain", True)  # may hold no-data pixels
    for index in chosen:
        sample = train[index]
        image = np.asarray(sample.image)
        sizes.append((int(image.shape[0]), int(image.shape[1])))
        stride = max(1, math.ceil(math.sqrt(image.shape[0] * image.shape[1] / SAMPLED_PIXELS)))
        kept = image[::stride, ::stride].reshape(-1, image.shape[-1])
        missing = train.missing_pixels(index) if rasters else None
        pixels.append(kept if missing is None else kept[~missing[::stride, ::stride].ravel()])
        if sample.mask is not None:
            labels = np.asarray(sample.mask).ravel()
            counts += np.bincount(labels[labels < classes.num_classes], minlength=classes.num_classes)
    if paths is not None:
        from pixelwise.data.io import image_size

        sizes = [image_size(path) for path in paths]
    heights, widths = np.array([size[0] for size in sizes]), np.array([size[1] for size in sizes])
    values = np.concatenate(pixels).astype(np.float64)
    if not len(values):
        raise PixelwiseError(f"the {len(chosen)} sampled training images hold no data; check --nodata")
    input_bands = getattr(train, "input_bands", None)
    total = max(int(counts.sum()), 1)
    return DatasetFingerprint(
        images=count,
        median_size=(int(np.median(heights)), int(np.median(widths))),
        smallest_size=(int(heights.min()), int(widths.min())),
        largest_size=(int(heights.max()), int(widths.max())),
        pixels=int((heights * widths).sum()) if paths is not None else int((heights * widths).mean() * count),
        channels=int(values.shape[1]),
        stored_types=tuple(sorted({_stored_type(paths[index]) for index in chosen})) if paths is not None else (),
        band_ranges=input_bands is not None and input_bands.ranges is not None,
        sampled=len(chosen),
        class_shares={name: float(counts[label] / total) for label, name in enumerate(classes.names)},
        intensity=tuple(_intensity(values[:, channel]) for channel in range(values.shape[1])),
    )


def plan_training(
    fingerprint: DatasetFingerprint,
    config: TrainConfig,
    *,
    given: set[str] | frozenset[str] = frozenset(),
    carved: bool = False,
) -> TrainingPlan:
    """The planned settings for ``fingerprint``; those in ``given`` (the user's) are marked and kept.
    ``carved``: the run has no validation images, so ``config.val_fraction`` of these is held out for it."""
    crop, crop_reason = _crop_size(fingerprint)
    training_pixels = round(fingerprint.pixels * (1 - config.val_fraction)) if carved else fingerprint.pixels
    planned = [
        ("crop_size", crop, crop_reason),
        ("batch_size", *_batch_size(config.crop_size if "crop_size" in given else crop, training_pixels)),
        ("loss", *_loss(fingerprint)),
        ("normalization", *_normalization(fingerprint, config)),
    ]
    return TrainingPlan(
        fingerprint=fingerprint,
        settings=tuple(
            PlannedSetting(name, getattr(config, name) if name in given else value, reason, given=name in given)
            for name, value, reason in planned
        ),
    )


def _crop_size(fingerprint: DatasetFingerprint) -> tuple[int, str]:
    height, width = fingerprint.median_size
    side = min(height, width)
    crop = min(max(CROP_STEP * math.floor(side / CROP_STEP + 0.5), SMALLEST_CROP), LARGEST_CROP)
    return crop, f"median image {height}×{width}, to a multiple of {CROP_STEP} within {SMALLEST_CROP}..{LARGEST_CROP}"


def _batch_size(crop: int, pixels: int) -> tuple[int, str]:
    by_step, by_share = round(STEP_PIXELS / crop**2), math.floor(DATASET_SHARE * pixels / crop**2)
    batch = min(max(min(by_step, by_share), SMALLEST_BATCH), LARGEST_BATCH)
    if by_share < by_step:
        why = f"a batch covers at most {100 * DATASET_SHARE:.0f} % of the {pixels:,} training pixels"
    else:
        why = "a step computes about 8 × 128² pixels"
    return batch, f"{crop}² crops: {why}, within {SMALLEST_BATCH}..{LARGEST_BATCH}"


def _loss(fingerprint: DatasetFingerprint) -> tuple[str, str]:
    shares = fingerprint.class_shares
    balanced = 1 / len(shares)
    rarest = min(shares, key=lambda name: shares[name])
    said = (
        f"class {rarest!r} has {100 * shares[rarest]:.1f} % of the labelled pixels (balanced: {100 * balanced:.1f} %)"
    )
    if shares[rarest] < RARE * balanced:
        return "ce+dice", f"rare {said}: Dice keeps it from being outvoted"
    return "ce", f"no rare class: the rarest, {said}"


def _normalization(fingerprint: DatasetFingerprint, config: TrainConfig) -> tuple[str, str]:
    stored = "/".join(fingerprint.stored_types) or "in-memory"
    eight_bit = fingerprint.stored_types == ("uint8",)
    photographs = eight_bit and fingerprint.channels in (1, 3)
    statistics = ", ".join(f"{channel.mean:.3f}±{channel.std:.3f}" for channel in fingerprint.intensity)
    if config.encoder_weights is not None and photographs:
        return "imagenet", f"{stored} images and a pretrained encoder: the statistics its weights were trained with"
    if eight_bit:
        robust = ""
    elif fingerprint.band_ranges:
        robust = "; each band scaled by the training set's 0.5..99.5th percentiles when read"
    else:
        robust = "; each image scaled by its 0.5..99.5th percentiles when read"
    pretrained = " (the pretrained encoder's are for 8-bit grey or RGB photographs)" if config.encoder_weights else ""
    return "dataset", (
        f"{stored} images, {fingerprint.channels} band(s): the training set's mean±std per channel, "
        f"{statistics}{robust}{pretrained}"
    )


def _intensity(values: np.ndarray) -> ChannelIntensity:
    low, median, high = np.percentile(values, [0.5, 50, 99.5])
    return ChannelIntensity(
        low=float(low), median=float(median), high=float(high), mean=float(values.mean()), std=float(values.std())
    )


def _stored_type(path: Path) -> str:
    """The type of an image file's stored values, from its header (what decides how it is read)."""
    from pixelwise.data.raster_files import raster_info

    try:
        return raster_info(path).dtype
    except Exception:  # the header was read once already (the sizes); a type it does not say is unknown
        return "unknown"
