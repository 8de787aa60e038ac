"""Torch datasets over a segmentation source: labeled crops, unlabeled crops, statistics and label hiding.

A *source* is anything indexable whose items have ``.image`` (H, W, C) float32 in [0, 1] and ``.mask``
(H, W) uint8 — a ``pixelwise.data.folder.SegmentationFolder`` or a plain list of such samples. Images
are read lazily, one per ``__getitem__``, so a large folder costs no memory up front.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from pixelwise.data.channels import check_channels, conform_channels
from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import PairedTransform, WeakStrongTransform
from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

# the streams of random augmentation, one per loader (see on_own_stream)
LABELED_STREAM, UNLABELED_STREAM, REAL_STREAM = 0, 1, 2
_AUGMENTATION = 0xA06  # keeps these seeds apart from the loaders' own (seed, epoch, stream)


class Samples(Protocol):
    """Indexable samples with ``.image`` and ``.mask`` (a SegmentationFolder, a list)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class LabeledSource(Samples, Protocol):
    """Samples plus what describes them: what ``fit`` trains on."""

    classes: ClassSpec
    in_channels: int


class LabeledCrops(Dataset[tuple[Tensor, Tensor]]):
    """``source[indices[i]]`` through ``transform``: image (C, h, w) float32 and mask (h, w) int64."""

    def __init__(self, source: Samples, indices: Sequence[int], transform: PairedTransform) -> None:
        self.source = source
        self.indices = list(indices)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        sample = self.source[self.indices[index]]
        if sample.mask is None:
            name = getattr(sample, "image_path", None) or getattr(sample, "stem", index)
            raise PixelwiseError(f"{name}: a training image without a mask; give it one or move it to unlabeled/")
        return self.transform(sample.image, sample.mask)


class UnlabeledCrops(Dataset[tuple[Tensor, ...]]):
    """Images without labels through ``transform``: image (C, h, w) and a validity map (h, w) int64 (and,
    with a ``WeakStrongTransform``, the strong view of the same crop after them).

    ``items`` are image paths, (H, W, C) arrays or samples with ``.image``; their masks, if any, are never
    read. The validity map is 0 on pixels from the image and ``ignore_index`` on padding or on corners a
    rotation brought in. Images with another channel count than the labeled ones are conformed as the
    data layer does for labeled folders (grey repeated, colour to luminance).
    """

    def __init__(
        self,
        items: Samples | Sequence[Any],
        transform: PairedTransform | WeakStrongTransform,
        *,
        channels: int,
        reader: Callable[[Path], np.ndarray] | None = None,
    ) -> None:
        self.items = items
        self.transform = transform
        self.channels = channels
        self.reader = reader

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        item = self.items[index]
        if self.reader is not None and isinstance(item, (str, os.PathLike)):
            image = self.reader(Path(item))  # read by the labeled folder's band rule (data.folder_bands)
        else:
            image = load_image(item)
        check_channels(
            image.shape[2], self.channels, str(getattr(item, "image_path", item)), expected="the model takes"
        )
        return self.transform(conform_channels(image, self.channels), None)


class SubsetView(Sequence[Any]):
    """A lazy view ``source[indices[i]]``, so hiding labels never loads the images up front."""

    def __init__(self, source: Samples, indices: Sequence[int]) -> None:
        self.source = source
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        return self.source[self.indices[index]]


def same_size_batches(samples: Samples, batch_size: int) -> Iterator[list[Any]]:
    """Consecutive samples of one image size, up to ``batch_size`` at a time: whole images go through the
    network together (validation, the pseudo-label check) without padding one to another's size."""
    batch: list[Any] = []
    for index in range(len(samples)):
        sample = samples[index]
        if batch and (len(batch) == batch_size or batch[0].image.shape != sample.image.shape):
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch


def load_image(item: Any) -> np.ndarray:
    """(H, W, C) float32 from a path, an array or a sample with ``.image``."""
    if isinstance(item, np.ndarray):
        return item if item.ndim == 3 else item[..., None]
    if isinstance(item, (str, os.PathLike)):
        from pixelwise.data.io import read_image

        return read_image(Path(item))
    image = getattr(item, "image", None)
    if image is None:
        raise TypeError(f"cannot read an image from {type(item).__name__}; give a path, an array or a sample")
    return np.asarray(image)


def on_own_stream(batches: Iterator[T], *, seed: int, stream: int, start: int, rank: int = 0) -> Iterator[T]:
    """``batches`` with the random augmentation of each drawn from a generator of its own, seeded by
    (``seed``, ``stream``, position), ``start`` being the position of the first; each process of a DDP run
    (``rank`` > 0) has streams of its own, and the first's are those of a run of one process.

    In one process the transforms draw from torch's global generator, which the networks share (the
    discriminator's initialisation, dropout): without this, adding D or an unlabeled loader would change
    every later labeled crop, and paired comparisons would compare different batches. Positions count
    iterations, so a resumed run draws the same. (With ``num_workers`` > 0 the workers are seeded from the
    loader's own generator anyway.)
    """
    for position in itertools.count(start):
        with torch.random.fork_rng(devices=[]):
            keys = (seed, _AUGMENTATION, stream, position, *((rank,) if rank else ()))
            torch.default_generator.manual_seed(derived_seed(*keys))
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def derived_seed(*keys: int) -> int:
    """A 32-bit seed from several integers, well mixed (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def split_labeled(count: int, fraction: float, *, seed: int) -> tuple[list[int], list[int]]:
    """Indices whose labels are kept and those whose labels are hidden; deterministic in ``seed``.

    At least one image keeps its label.

    >>> split_labeled(8, 0.25, seed=0) == split_labeled(8, 0.25, seed=0)
    True
    >>> [len(part) for part in split_labeled(8, 0.25, seed=0)]
    [2, 6]
    """
    if fraction >= 1.0:
        return list(range(count)), []
    keep = min(count, max(1, round(fraction * count)))
    order = np.random.default_rng(seed).permutation(count)
    return sorted(order[:keep].tolist()), sorted(order[keep:].tolist())


def channel_statistics(
    source: Samples, indices: Sequence[int], *, max_images: int = 512
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std over all pixels of up to ``max_images`` images, evenly spread over
    ``indices`` (no-data pixels left out, where the source says which: ``missing_pixels(index)``); a constant
    channel gets std 1 so standardising never divides by zero.

    Accumulates in float64 (sums of squares of millions of pixels lose digits in float32).
    """
    if not indices:
        raise PixelwiseError("no training images to compute the normalisation statistics from")
    chosen = [indices[int(i)] for i in np.linspace(0, len(indices) - 1, min(max_images, len(indices)))]
    total = squares = None
    pixels = 0
    # no-data pixels (read as 0, data.bands) are not part of the picture: the statistics leave them out
    missing_pixels = getattr(source, "missing_pixels", None)
    for index in dict.fromkeys(chosen):
        image = np.asarray(source[index].image, dtype=np.float64)
        missing = missing_pixels(index) if missing_pixels is not None else None
        flat = image.reshape(-1, image.shape[-1]) if missing is None else image[~missing]
        total = flat.sum(0) if total is None else total + flat.sum(0)
        squares = (flat**2).sum(0) if squares is None else squares + (flat**2).sum(0)
        pixels += flat.shape[0]
    assert total is not None and squares is not None
    mean = total / pixels
    std = np.sqrt(np.maximum(squares / pixels - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    return tuple(float(value) for value in mean), tuple(float(value) for value in std)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: numpy and ``random`` follow the worker's torch seed (itself derived
    from the loader's generator), so augmentation in workers repeats with ``--seed``."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def normalization(config: TrainConfig, train: Samples, in_channels: int) -> dict[str, list[float]]:
    """The per-channel ``{"mean", "std"}`` the network sees its inputs standardised with: ImageNet-style
    statistics for a pretrained encoder, else the training images' own."""
    from pixelwise.models.pretrained import normalization_for

    if config.normalization == "imagenet" or (config.normalization == "auto" and config.encoder_weights):
        statistics = normalization_for(config.encoder, config.encoder_weights or "imagenet", in_channels)
        assert statistics is not None
        mean, std = statistics
    else:
        mean, std = channel_statistics(train, list(range(len(train))))
    return {"mean": [float(value) for value in mean], "std": [float(value) for value in std]}


class WithBoundaryClass:
    """A labeled source whose masks carry the boundary class (``pixelwise.instances.boundary``): each truth
    object's outer ring of ``BOUNDARY_WIDTH`` pixels becomes the class 'object boundary', last in
    ``.classes``. The objects are the label image beside each mask (``instances/<stem>.*``) where there is
    one, else each class's connected components (objects that touch in the mask then stay one). Everything
    else is the source's."""

    def __init__(self, source: Samples) -> None:
        from pixelwise.instances.boundary import with_boundary_class

        self.source = source
        self.classes = with_boundary_class(source.classes)  # type: ignore[attr-defined]
        self.in_channels = source.in_channels  # type: ignore[attr-defined]
        mask_paths = getattr(source, "mask_paths", None)
        self._mask_paths: list[Path] | None = list(mask_paths) if mask_paths is not None else None

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Any:
        from pixelwise.instances.boundary import add_boundary
        from pixelwise.instances.labels import instance_labels
        from pixelwise.instances.truth import instances_from_labels

        sample = self.source[index]
        if sample.mask is None:
            return sample
        classes = self.source.classes  # type: ignore[attr-defined]
        labels_file = self._labels_file(index)
        if labels_file is not None:
            from pixelwise.instances.io import read_label_image

            objects = instances_from_labels(read_label_image(labels_file), sample.mask, classes).labels
        else:
            objects = instance_labels(sample.mask, classes, split=False, min_size=0).labels
        if objects.shape != sample.mask.shape:
            raise PixelwiseError(f"{labels_file}: its size differs from the mask's; give the label image of that mask")
        mask = add_boundary(sample.mask, objects, boundary=self.classes.num_classes - 1)
        return sample._replace(mask=mask) if hasattr(sample, "_replace") else _Relabeled(sample, mask)

    def _labels_file(self, index: int) -> Path | None:
        if self._mask_paths is None:
            return None
        from pixelwise.instances.io import instance_file

        return instance_file(self._mask_paths[index])

    def __getattr__(self, name: str) -> Any:  # unlabeled_paths, stems, root ...: the source's
        if name.startswith("_") or name == "source":  # not set yet (unpickling in a loader worker)
            raise AttributeError(name)
        return getattr(self.source, name)


class _Relabeled:
    """A sample with another mask (for samples that are not named tuples)."""

    def __init__(self, sample: Any, mask: np.ndarray) -> None:
        self._sample = sample
        self.mask = mask

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._sample, name)


def boundary_sources(config: TrainConfig, train: Any, val: Any) -> tuple[Any, Any]:
    """``train`` and ``val`` with the boundary class when ``config.boundary_class``, else as they are."""
    if not config.boundary_class:
        return train, val
    return WithBoundaryClass(train), (WithBoundaryClass(val) if val is not None else None)


def unlabeled_dataset(
    config: TrainConfig,
    train: Samples,
    hidden: list[int],
    unlabeled: Sequence[Any] | None,
    transform: PairedTransform | WeakStrongTransform,
    in_channels: int,
) -> Dataset[tuple[Tensor, ...]] | None:
    """Images whose labels are hidden, ``unlabeled`` and the folder's unlabeled/; None when no term needs them."""
    sources: list[Dataset[tuple[Tensor, ...]]] = []
    counts = {"hidden labels": len(hidden)}
    if hidden:
        sources.append(UnlabeledCrops(SubsetView(train, hidden), transform, channels=in_channels))
    # files are read as the labeled images are (their bands, no-data value and band ranges)
    read_image = getattr(train, "read_image", None)
    reader = (lambda path: read_image(path)[0]) if read_image is not None else None
    for name, items in (("given", unlabeled), ("unlabeled/", getattr(train, "unlabeled_paths", None))):
        if items:
            counts[name] = len(items)
            sources.append(UnlabeledCrops(list(items), transform, channels=in_channels, reader=reader))
    total = sum(counts.values())
    needing = [name for name in ("semi_weight", "fixmatch_weight") if getattr(config, name) > 0]
    if needing and not total:
        raise PixelwiseError(
            f"{needing[0]} > 0 needs unlabeled images: put them in DATA/unlabeled/, pass --unlabeled DIR, "
            "or hide labels with --labeled-fraction F"
        )
    if not config.uses_unlabeled or not total:
        if total:
            logger.info("not using %d unlabeled images: no term learns from them", total)
        return None
    logger.info("unlabeled images: %s", ", ".join(f"{count} ({name})" for name, count in counts.items() if count))
    return sources[0] if len(sources) == 1 else ConcatDataset(sources)


@dataclass(frozen=True)
class RunData:
    """The datasets of one run: labeled crops, unlabeled crops (None when no term learns from them), the
    transform of whole images for validation, and the images with hidden labels that score the pseudo-labels."""

    labeled: LabeledCrops
    unlabeled: Dataset[tuple[Tensor, ...]] | None
    evaluate: PairedTransform
    checked: Samples | None


def run_datasets(
    config: TrainConfig,
    train: LabeledSource,
    statistics: dict[str, list[float]],
    *,
    labeled: list[int],
    hidden: list[int],
    unlabeled: Sequence[Any] | None,
) -> RunData:
    """``train``'s ``labeled`` images as augmented crops, the unlabeled ones (``hidden``, ``unlabeled`` and the
    folder's own), standardised by ``statistics``."""
    from pixelwise.data.transforms import evaluation_transform, training_transform, weak_and_strong_transform

    classes, in_channels = train.classes, int(train.in_channels)
    augmentation: dict[str, Any] = {
        "crop_size": config.crop_size,
        "mean": statistics["mean"],
        "std": statistics["std"],
        "ignore_index": classes.ignore_index,
        "scale_range": config.scale_range,
        "rotation": config.rotation,
        "horizontal_flip": config.horizontal_flip,
        "vertical_flip": config.vertical_flip,
        "color_jitter": config.color_jitter,
    }
    augment = training_transform(**augmentation)
    # FixMatch's crops come with a strong view of themselves
    unlabeled_augment = weak_and_strong_transform(**augmentation) if config.fixmatch_weight > 0 else augment
    unlabeled_data = (
        unlabeled_dataset(config, train, hidden, unlabeled, unlabeled_augment, in_channels)
        if config.uses_unlabeled
        else None
    )
    # the images whose labels are hidden score the pseudo-labels each epoch (a bounded, fixed sample)
    wanted = config.pseudo_label_check_images
    checked = hidden[:: -(-len(hidden) // wanted)] if wanted and hidden else []
    return RunData(
        labeled=LabeledCrops(train, labeled, augment),
        unlabeled=unlabeled_data,
        evaluate=evaluation_transform(
            mean=statistics["mean"], std=statistics["std"], ignore_index=classes.ignore_index
        ),
        checked=SubsetView(train, checked) if checked else None,
    )
