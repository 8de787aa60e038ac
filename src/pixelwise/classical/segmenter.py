"""``ClassicalSegmenter``: a classical method and a labeler together, image -> class labels, kept as JSON.

The saved form (``FORMAT``, one JSON object)::

    format     "pixelwise.classical/1"
    method     a name of ``registry.METHODS``
    options    the method's options
    classes    ClassSpec.to_dict()
    labeler    FittedLabeler.to_dict()
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pixelwise.classical.labeling import FittedLabeler, LabelerMode, oracle_labels, oracle_name
from pixelwise.classical.registry import ORDERED_METHODS, check_options, segment
from pixelwise.data.classes import IGNORE_INDEX, ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_path

FORMAT = "pixelwise.classical/1"


class ClassicalSegmenter:
    """A classical method and a labeler: image -> (H, W) class labels. What ``compare`` and the CLI use.

    ``labeler="fitted"``: ``fit`` learns region -> class on training data (``FittedLabeler``, index mode
    for the methods in ``ORDERED_METHODS``, colour mode for the others); ``predict(image)`` never uses a
    mask. ``labeler="oracle"``: ``predict(image, truth)`` labels each region with the majority true class;
    its ``name`` is ``oracle_name(method)`` so it cannot be taken for an honest result.

    >>> segmenter = ClassicalSegmenter("otsu")
    >>> train = [(np.array([[0.1, 0.2, 0.8, 0.9]]), np.array([[0, 0, 1, 1]]))]
    >>> segmenter.fit(train).predict(np.array([[0.3, 0.7, 0.6]]))
    array([[0, 1, 1]], dtype=uint8)
    >>> ClassicalSegmenter("otsu", labeler="oracle").name
    'otsu-oracle'
    """

    def __init__(
        self,
        method: str,
        options: Mapping[str, Any] | None = None,
        labeler: Literal["fitted", "oracle"] = "fitted",
        *,
        classes: ClassSpec | None = None,
    ) -> None:
        self.options: dict[str, Any] = dict(options or {})
        check_options(method, self.options)
        if labeler not in ("fitted", "oracle"):
            raise PixelwiseError(f"labeler must be 'fitted' or 'oracle', got {labeler!r}")
        self.method = method
        self.labeler_kind = labeler
        self.labeler: FittedLabeler | None = None
        # the oracle takes ignore_index from here; fit sets it from the training data
        self.classes: ClassSpec | None = classes

    @property
    def oracle(self) -> bool:
        return self.labeler_kind == "oracle"

    @property
    def name(self) -> str:
        """``"otsu"``, or ``"otsu-oracle"`` (``oracle_name``) for the oracle upper bound."""
        return oracle_name(self.method) if self.oracle else self.method

    def regions(self, image: np.ndarray) -> np.ndarray:
        """The method's partition: (H, W[, C]) float in [0, 1] -> (H, W) int32 region labels."""
        return segment(self.method, image, **self.options)

    def fit(self, train: Iterable[Any], *, classes: ClassSpec | None = None) -> ClassicalSegmenter:
        """Learn region -> class on ``train``; a no-op for the oracle apart from remembering the classes.

        ``train``: a ``SegmentationFolder`` (its ``classes`` are used), or (image, mask) pairs with
        image (H, W[, C]) float in [0, 1] and mask (H, W) int; samples without a mask are skipped.
        ``classes`` overrides; without either, K = largest label + 1 (at least 2).
        """
        chosen = classes if classes is not None else getattr(train, "classes", self.classes)
        if self.oracle:
            self.classes = chosen
            return self
        pairs = [(image, mask) for image, mask in _pairs(train) if mask is not None]
        if not pairs:
            raise PixelwiseError(f"{self.method}: no training image with a mask; give a labelled training split")
        if chosen is None:
            ignore = IGNORE_INDEX
            largest = max(int(np.max(mask, initial=0, where=np.asarray(mask) != ignore)) for _, mask in pairs)
            chosen = ClassSpec.default(max(largest + 1, 2), ignore_index=ignore)
        mode: LabelerMode = "index" if self.method in ORDERED_METHODS else "colour"
        self.labeler = FittedLabeler(mode=mode).fit(
            ((self.regions(image), image, mask) for image, mask in pairs),
            num_classes=chosen.num_classes,
            ignore_index=chosen.ignore_index,
        )
        self.classes = chosen
        return self

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        """(H, W[, C]) float in [0, 1] -> (H, W) uint8 classes.

        ``truth`` (H, W) is read only by the oracle, which needs it; the fitted labeler ignores it.
        """
        regions = self.regions(image)
        if self.oracle:
            if truth is None:
                raise PixelwiseError(f"{self.name} needs the true mask of each image; give truth (or use --fit)")
            ignore = self.classes.ignore_index if self.classes is not None else 255
            return oracle_labels(regions, truth, ignore_index=ignore)
        if self.labeler is None:
            raise PixelwiseError(f"{self.name}: not fitted; call fit on a training split first")
        return self.labeler.predict(regions, image)

    # --- saving ----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of a fitted segmenter (method, options, classes, labeler table)."""
        if self.oracle or self.labeler is None or self.classes is None:
            raise PixelwiseError(f"{self.name}: only a fitted segmenter can be saved; fit it first")
        try:
            json.dumps(self.options)
        except TypeError:
            raise PixelwiseError(
                f"{self.name}: options {self.options} cannot be saved as JSON (arrays?); give plain values"
            ) from None
        return {
            "format": FORMAT,
            "method": self.method,
            "options": self.options,
            "classes": self.classes.to_dict(),
            "labeler": self.labeler.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "fitted segmenter") -> ClassicalSegmenter:
        """The segmenter ``to_dict`` saved; ``source`` (a file name) begins every error message."""
        if data.get("format") != FORMAT:
            raise PixelwiseError(f"{source}: not a fitted classical segmenter (format {data.get('format')!r})")
        missing = [key for key in ("method", "classes", "labeler") if key not in data]
        if missing:
            raise PixelwiseError(
                f"{source}: the fitted segmenter has no {missing[0]!r}; fit it again (`pixelwise classical "
                "--fit DATA --save-fit FILE`)"
            )
        options = data.get("options") or {}
        if not isinstance(options, Mapping):
            raise PixelwiseError(f"{source}: the options of the fitted segmenter are not a mapping; fit it again")
        try:
            segmenter = cls(str(data["method"]), dict(options))
        except PixelwiseError as error:  # an unknown method or option
            raise PixelwiseError(f"{source}: {error}") from None
        segmenter.classes = ClassSpec.from_dict(data["classes"], source=source)
        segmenter.labeler = FittedLabeler.from_dict(data["labeler"], source=source)
        if segmenter.labeler.num_classes != segmenter.classes.num_classes:
            raise PixelwiseError(f"{source}: the labeler and the classes disagree on the number of classes")
        return segmenter

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``to_dict`` as JSON (atomically)."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClassicalSegmenter:
        file = Path(path)
        try:
            data = json.loads(file.read_text())
        except FileNotFoundError:
            raise PixelwiseError(
                f"{file}: no such file; give a fitted segmenter saved by `pixelwise classical --fit`"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PixelwiseError(
                f"{file}: not JSON; give a fitted segmenter saved by `pixelwise classical --fit`"
            ) from None
        if not isinstance(data, dict):
            raise PixelwiseError(f"{file}: not a fitted classical segmenter")
        return cls.from_dict(data, source=str(file))


def _pairs(train: Iterable[Any]) -> Iterable[tuple[np.ndarray, np.ndarray | None]]:
    for item in train:
        if hasattr(item, "image") and hasattr(item, "mask"):
            yield item.image, item.mask
        else:
            image, mask = item
            yield image, mask
