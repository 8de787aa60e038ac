"""From regions to classes: a labeler fitted on training images, and the oracle upper bound.

A classical method partitions an image; it does not say which part is a nucleus. Two ways to name parts:

- ``FittedLabeler`` (honest): learns on training images, with their masks, which region goes to which
  class; at prediction time it sees only the regions and the image, never a mask.
- ``oracle_labels`` (upper bound): each region takes the majority class of the *true* mask inside it.
  It shows how well a partition follows the objects' boundaries, not how well the method segments:
  it uses the answer. Its results always carry ``oracle_name(method)`` (``"otsu-oracle"``).

``segmenter.ClassicalSegmenter`` puts a method and a labeler together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from pixelwise.data.classes import IGNORE_INDEX
from pixelwise.errors import PixelwiseError

# the one spelling of an oracle bound's name, in results, tables, figures and file names
ORACLE_SUFFIX = "-oracle"
LabelerMode = Literal["index", "colour"]
LABELER_MODES: tuple[str, ...] = ("index", "colour")
# index mode counts per label value; the ordered methods have a handful (bins, clusters)
MAX_INDEX_LABELS = 65536


def oracle_name(method: str) -> str:
    """The name of ``method``'s oracle bound, wherever it appears: one spelling, so it never passes for a result.

    >>> oracle_name("otsu")
    'otsu-oracle'
    """
    return f"{method}{ORACLE_SUFFIX}"


def oracle_labels(regions: np.ndarray, truth: np.ndarray, *, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Each region takes the most frequent true class inside it: the oracle upper bound, never an honest result.

    regions: (H, W) int labels; truth: (H, W) int classes 0..K-1 or ``ignore_index``.
    Returns (H, W) uint8 classes. Pixels marked ``ignore_index`` do not vote; a region made only of them
    gets ``ignore_index`` (every metric leaves those pixels out anyway). Ties go to the lower class.

    >>> regions = np.array([[1, 1, 2], [1, 2, 2]])
    >>> truth = np.array([[0, 0, 1], [1, 1, 255]])
    >>> oracle_labels(regions, truth)
    array([[0, 0, 1],
           [0, 1, 1]], dtype=uint8)
    """
    regions, truth = np.asarray(regions), np.asarray(truth)
    if regions.shape != truth.shape or regions.ndim != 2:
        raise PixelwiseError(f"oracle: regions {regions.shape} and truth {truth.shape} must be the same (H, W)")
    _, inverse = np.unique(regions, return_inverse=True)
    inverse = inverse.reshape(-1)
    classes = truth.reshape(-1).astype(np.int64)
    valid = classes != ignore_index
    num_regions = int(inverse.max()) + 1
    num_classes = int(classes[valid].max()) + 1 if valid.any() else 1
    votes = np.bincount(inverse[valid] * num_classes + classes[valid], minlength=num_regions * num_classes).reshape(
        num_regions, num_classes
    )
    majority = np.where(votes.sum(axis=1) > 0, votes.argmax(axis=1), ignore_index)
    return majority[inverse].reshape(truth.shape).astype(np.uint8)


class FittedLabeler:
    """Learns region -> class on training images; predicts from the regions and the image alone.

    Two modes:

    - ``"index"``, for methods whose labels mean the same on every image (threshold bins, k-means
      clusters ordered by brightness): label value -> the class most of the training pixels with that
      label belong to. Otsu's bright bin becomes "nucleus" if most training pixels in it are nuclei.
    - ``"colour"``, for methods that number regions arbitrarily (superpixels, watershed, region growing):
      a region's mean colour -> class, by a lookup table over the colour cube cut into ``bins`` cells per
      channel (64 for grey, 16 per channel for colour). Training pixels are counted per class in the cell
      of their region's mean colour, the counts are smoothed with a Gaussian of ``smoothing`` (in value
      units) over the cube, and each cell takes the class with the most; cells beyond the smoothing's reach
      take the class of the nearest cell with counts. This is a Bayes classifier on the region mean (a
      kernel density estimate per class, the training class frequencies as priors) in a small JSON table.
      Without the smoothing, a test region whose mean fell into a cell that only a few small training
      regions had visited took their class: on the nuclei tiles, a whole background region of
      ``canny_regions`` became "nucleus" that way (pixel accuracy 0.53 instead of 0.9).

    A label or cell never seen in training gets the most frequent training class.

    >>> labeler = FittedLabeler(mode="index")
    >>> regions = np.array([[0, 0, 1, 1]]); image = np.array([[0.1, 0.2, 0.8, 0.9]])
    >>> _ = labeler.fit([(regions, image, np.array([[0, 0, 1, 1]]))], num_classes=2)
    >>> labeler.predict(np.array([[1, 0, 0]]), np.array([[0.7, 0.1, 0.3]]))
    array([[1, 0, 0]], dtype=uint8)
    """

    def __init__(self, *, mode: LabelerMode = "colour", bins: int | None = None, smoothing: float = 0.02) -> None:
        if mode not in LABELER_MODES:
            raise PixelwiseError(f"labeler mode must be one of {', '.join(LABELER_MODES)}, got {mode!r}")
        if bins is not None and (isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 256):
            raise PixelwiseError(f"labeler bins must be an integer in 1..256, got {bins!r}")
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing <= 1:
            raise PixelwiseError(f"labeler smoothing must be a number in [0, 1], got {smoothing!r}")
        self.mode: LabelerMode = mode
        self.bins = bins
        self.smoothing = float(smoothing)
        self.channels: int | None = None
        self.num_classes: int | None = None
        self.table: np.ndarray | None = None  # (labels or cells,) uint8 classes
        self.prior = 0

    @property
    def fitted(self) -> bool:
        return self.table is not None

    def fit(
        self,
        examples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
        *,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
    ) -> FittedLabeler:
        """Learn from (regions (H, W) int, image (H, W[, C]) float in [0, 1], truth (H, W) int) training triples."""
        if num_classes < 1 or num_classes > 255:
            raise PixelwiseError(f"labeler: num_classes must be in 1..255, got {num_classes}")
        counts = np.zeros((0, num_classes), np.int64)
        seen = 0
        for regions, image, truth in examples:
            regions, pixels = _check_pair(regions, image)
            truth = np.asarray(truth)
            if truth.shape != regions.shape:
                raise PixelwiseError(f"labeler: mask {truth.shape} and image {regions.shape} differ in size")
            if self.channels is None:
                self.channels = pixels.shape[2]
                if self.bins is None:
                    self.bins = 64 if self.channels == 1 else 16
            elif pixels.shape[2] != self.channels:
                raise PixelwiseError(
                    f"labeler: training images have {self.channels} and {pixels.shape[2]} channels; use one kind"
                )
            keys = self._keys(regions, pixels)
            classes = truth.reshape(-1).astype(np.int64)
            valid = classes != ignore_index
            if valid.any() and classes[valid].max() >= num_classes:
                raise PixelwiseError(
                    f"labeler: a training mask has class {classes[valid].max()} but there are {num_classes} classes"
                )
            size = int(keys.max()) + 1
            if size > len(counts):
                counts = np.concatenate([counts, np.zeros((size - len(counts), num_classes), np.int64)])
            counts += np.bincount(
                keys[valid] * num_classes + classes[valid], minlength=len(counts) * num_classes
            ).reshape(len(counts), num_classes)
            seen += int(valid.sum())
        if seen == 0:
            raise PixelwiseError("labeler: no labelled training pixel to learn from; give images with masks")
        self.num_classes = num_classes
        self.prior = int(counts.sum(axis=0).argmax())
        if self.mode == "colour":
            # one row per cell of the colour cube, also for the cells beyond the brightest one seen
            counts = np.concatenate([counts, np.zeros((self._num_cells() - len(counts), num_classes), np.int64)])
            counts = self._smooth(counts)
        filled = counts.sum(axis=1) > 0
        table = np.where(filled, counts.argmax(axis=1), self.prior)
        if self.mode == "colour":
            table = self._fill_empty_cells(table, filled)
        self.table = table.astype(np.uint8)
        return self

    def predict(self, regions: np.ndarray, image: np.ndarray) -> np.ndarray:
        """(H, W) int regions + (H, W[, C]) image -> (H, W) uint8 classes. No ground truth involved."""
        if self.table is None:
            raise PixelwiseError("labeler: not fitted; call fit on training images first (or load a fitted one)")
        regions, pixels = _check_pair(regions, image)
        if pixels.shape[2] != self.channels:
            raise PixelwiseError(
                f"labeler: fitted on images with {self.channels} channel(s), got {pixels.shape[2]}; "
                "fit on images of the same kind"
            )
        keys = self._keys(regions, pixels)
        known = keys < len(self.table)
        classes = np.full(keys.shape, self.prior, np.uint8)
        classes[known] = self.table[keys[known]]
        return classes.reshape(regions.shape)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``FittedLabeler.from_dict`` gives the same labeler back."""
        if self.table is None:
            raise PixelwiseError("labeler: not fitted; nothing to save")
        return {
            "mode": self.mode,
            "bins": self.bins,
            "smoothing": self.smoothing,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "prior": self.prior,
            "table": self.table.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "labeler") -> FittedLabeler:
        """The labeler ``to_dict`` saved; ``source`` (a file name) begins every error message."""
        if not isinstance(data, Mapping):
            raise PixelwiseError(f"{source}: the saved labeler is damaged (not a mapping); fit it again")
        missing = [key for key in ("mode", "bins", "channels", "num_classes", "prior", "table") if key not in data]
        if missing:
            raise PixelwiseError(f"{source}: the saved labeler is damaged (no {missing[0]!r}); fit it again")
        try:
            labeler = cls(mode=data["mode"], bins=data["bins"], smoothing=data.get("smoothing", 0.02))
            labeler.channels = int(data["channels"])
            labeler.num_classes = int(data["num_classes"])
            labeler.prior = int(data["prior"])
            table = np.asarray(data["table"], dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise PixelwiseError(f"{source}: the saved labeler is damaged ({error}); fit it again") from None
        except PixelwiseError as error:
            raise PixelwiseError(f"{source}: {error}") from None
        if labeler.channels not in (1, 3) or table.ndim != 1 or len(table) == 0:
            raise PixelwiseError(f"{source}: the saved labeler is damaged (channels or table); fit it again")
        if table.min() < 0 or table.max() >= labeler.num_classes or not 0 <= labeler.prior < labeler.num_classes:
            raise PixelwiseError(f"{source}: the saved table names classes that do not exist; fit it again")
        if labeler.mode == "colour" and len(table) != labeler._num_cells():
            raise PixelwiseError(f"{source}: the saved colour table has the wrong size; fit it again")
        labeler.table = table.astype(np.uint8)
        return labeler

    # --- helpers ---------------------------------------------------------------------------------------

    def _keys(self, regions: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """(H*W,) int64: the label value (index mode) or the colour cell of the pixel's region mean (colour)."""
        if self.mode == "index":
            if regions.min() < 0 or regions.max() >= MAX_INDEX_LABELS:
                raise PixelwiseError(
                    f"labeler: index mode needs region labels in 0..{MAX_INDEX_LABELS - 1}, got "
                    f"{regions.min()}..{regions.max()}; use the colour mode for this method"
                )
            return regions.reshape(-1).astype(np.int64)
        _, inverse = np.unique(regions, return_inverse=True)
        inverse = inverse.reshape(-1)
        sizes = np.bincount(inverse)
        values = pixels.reshape(-1, pixels.shape[2])
        means = np.stack(
            [np.bincount(inverse, weights=values[:, channel]) / sizes for channel in range(values.shape[1])], axis=1
        )
        assert self.bins is not None
        steps = np.clip((means * self.bins).astype(np.int64), 0, self.bins - 1)
        cells = (steps * self.bins ** np.arange(steps.shape[1])).sum(axis=1)
        return cells[inverse]

    def _num_cells(self) -> int:
        assert self.bins is not None and self.channels is not None
        return int(self.bins**self.channels)

    def _smooth(self, counts: np.ndarray) -> np.ndarray:
        """(cells, K) counts -> the same convolved with a Gaussian of ``smoothing`` over the colour cube."""
        assert self.bins is not None and self.channels is not None
        sigma = self.smoothing * self.bins  # in cells
        if sigma == 0:
            return counts
        from scipy import ndimage

        # the cell index puts channel 0 fastest, a C-order reshape reverses the channel axes: the Gaussian is
        # isotropic, so the order does not matter; outside the cube there is no mass ("constant" 0)
        grid = counts.astype(np.float64).reshape((self.bins,) * self.channels + (counts.shape[1],))
        smoothed = ndimage.gaussian_filter(grid, (sigma,) * self.channels + (0,), mode="constant")
        # mass that only the kernel's far tail reaches is numerical noise, not evidence
        smoothed[smoothed < 1e-9 * smoothed.max()] = 0
        return smoothed.reshape(counts.shape)

    def _fill_empty_cells(self, table: np.ndarray, filled: np.ndarray) -> np.ndarray:
        # colour cells no training region fell into take the class of the nearest filled cell (cell centres,
        # Euclidean): a test region a little brighter than any training region still gets a sensible class
        assert self.bins is not None and self.channels is not None
        steps = np.stack(np.unravel_index(np.arange(len(table)), (self.bins,) * self.channels, order="F"), axis=1)
        centres = (steps + 0.5) / self.bins
        sources = np.flatnonzero(filled)
        distances = ((centres[:, None, :] - centres[None, sources, :]) ** 2).sum(axis=2)
        return np.where(filled, table, table[sources[distances.argmin(axis=1)]])


def _check_pair(regions: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) int regions and (H, W[, C]) image -> the same as arrays, the image (H, W, C) float64."""
    regions = np.asarray(regions)
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if regions.ndim != 2 or pixels.shape[:2] != regions.shape or not np.issubdtype(regions.dtype, np.integer):
        raise PixelwiseError(f"labeler: regions {regions.shape} must be integers of the image's (H, W) {pixels.shape}")
    return regions, pixels
