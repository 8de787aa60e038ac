"""Bands: which bands of an image a model reads, which pixels hold no data, and how values become [0, 1].

**Band selection** (``--bands 4,3,2``): bands are numbered from 1, as GDAL and every GIS number them, or named
by the names the file gives its bands (``--bands B4,B3,B2``); the selection picks and orders them. It is
stored with the model (``InputBands.selection``) and applied again to every image the model predicts.

**No data** (``nodata``): a stored value that means "nothing was measured here" (the black frame around a
satellite scene, a -9999 fill). A pixel is *no data* when every band of it holds that value (or NaN, in a float
image). Such pixels are read as 0, get the ignore label in training and evaluation, and stay no data (the
ignore label) in a predicted mask. The value is the user's (``--nodata``), else the file's own.

**From stored values to [0, 1]**, the rule (``wants_dataset_ranges``):

- uint8 images are divided by 255, whatever their bands: they fill their range by convention;
- grey and RGB images of other types (16-bit microscopy, CT in Hounsfield units, float photos) are scaled
  *per image* by their own 0.5–99.5 percentile range, pooled over the channels: a 16-bit microscope image
  often uses a few hundred of its 65,536 levels, and such images have no common range (this was the one rule
  before bands existed, and the results of such data do not move);
- images of any other band count, georeferenced images, and images whose bands were picked with ``--bands``
  (multispectral and geospatial data: reflectance, radiance, elevation) are scaled *per band by the training
  set's* 0.5–99.5 percentile range (``BandRanges``, computed once from the training images, stored with the
  model, applied unchanged at prediction): the same stored value means the same input in every image, so the
  physics (a brighter NIR band is more vegetation) survives, which a per-image stretch destroys.

``scaling="image"`` or ``"dataset"`` forces either rule for non-uint8 data (``pixelwise train --scaling``).
Values beyond the range are clipped to [0, 1]; the network then standardises its inputs as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelwise.errors import InputError, PixelwiseError

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
SCALINGS = ("auto", "image", "dataset")
# pixels per band drawn from the training images for the dataset's percentiles: plenty for two percentiles
RANGE_SAMPLE = 2_000_000

Band = int | str


class BandMismatch(InputError):
    """An image that lacks the bands asked for (a number beyond it, a name it does not have), or whose band
    count is not the model's: a good image, but not for this model or selection."""


@dataclass(frozen=True)
class BandRanges:
    """Per-band [low, high] of stored values that maps to [0, 1]: ``(x - low) / (high - low)``, clipped."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", tuple(float(value) for value in self.low))
        object.__setattr__(self, "high", tuple(float(value) for value in self.high))
        if len(self.low) != len(self.high) or not self.low:
            raise PixelwiseError(f"band ranges need one low and one high per band, got {self.low} and {self.high}")

    def to_dict(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Sequence[float]]) -> BandRanges:
        return cls(tuple(raw["low"]), tuple(raw["high"]))


@dataclass(frozen=True)
class InputBands:
    """How a model reads its images, recorded with it (checkpoint, inference spec) and applied again.

    ``selection``: the bands, 1-based numbers or names, in the model's channel order; empty: every band in
    the file's order. ``nodata``: the no-data value the user gave at training (None: each file's own).
    ``ranges``: the training set's per-band ranges (None: uint8 / 255, or the per-image rule).

    >>> InputBands.from_dict(InputBands((4, "B3"), 0.0, BandRanges((1.0, 2.0), (9.0, 8.0))).to_dict())
    InputBands(selection=(4, 'B3'), nodata=0.0, ranges=BandRanges(low=(1.0, 2.0), high=(9.0, 8.0)))
    """

    selection: tuple[Band, ...] = ()
    nodata: float | None = None
    ranges: BandRanges | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, only what is set."""
        raw: dict[str, Any] = {}
        if self.selection:
            raw["selection"] = list(self.selection)
        if self.nodata is not None:
            raw["nodata"] = self.nodata
        if self.ranges is not None:
            raw["ranges"] = self.ranges.to_dict()
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InputBands:
        selection = tuple(value if isinstance(value, str) else int(value) for value in raw.get("selection") or ())
        nodata = raw.get("nodata")
        ranges = raw.get("ranges")
        return cls(
            selection,
            None if nodata is None else float(nodata),
            None if ranges is None else BandRanges.from_dict(ranges),
        )


def parse_bands(text: str, *, flag: str = "--bands") -> tuple[Band, ...]:
    """``"4,3,2"`` -> (4, 3, 2); names stay text (``"B4,B3"``); a bad list is one line naming it.

    >>> parse_bands("4, 3,2"), parse_bands("B8,nir")
    ((4, 3, 2), ('B8', 'nir'))
    """
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise PixelwiseError(f"{flag} {text!r}: give band numbers (from 1) or names, separated by commas, e.g. 4,3,2")
    bands: list[Band] = []
    for item in items:
        if item.lstrip("+-").isdigit():
            number = int(item)
            if number < 1:
                raise PixelwiseError(f"{flag} {text!r}: bands are numbered from 1 (as GDAL numbers them); got {number}")
            bands.append(number)
        else:
            bands.append(item)
    repeated = sorted({str(band) for band in bands if bands.count(band) > 1})
    if repeated:
        raise PixelwiseError(f"{flag} {text!r}: band {', '.join(repeated)} given twice; give each band once")
    return tuple(bands)


def band_indices(selection: Sequence[Band], *, count: int, names: Sequence[str], file: str) -> list[int]:
    """0-based indices of ``selection`` in a file of ``count`` bands named ``names``; every band when empty.

    A number beyond the file or a name it lacks is an InputError naming the file and the fix.
    """
    if not selection:
        return list(range(count))
    indices = []
    for band in selection:
        if isinstance(band, int):
            if not 1 <= band <= count:
                raise BandMismatch(
                    f"{file}: band {band} is beyond its {count} band{'s' if count > 1 else ''}; "
                    f"give --bands between 1 and {count}"
                )
            indices.append(band - 1)
            continue
        matches = [index for index, name in enumerate(names) if name == band]
        matches = matches or [index for index, name in enumerate(names) if name.lower() == band.lower()]
        if len(matches) != 1:
            known = (
                f"its bands are {', '.join(repr(name) for name in names)}" if any(names) else "its bands have no names"
            )
            raise BandMismatch(f"{file}: no band named {band!r} ({known}); give --bands by number, 1 to {count}")
        indices.append(matches[0])
    return indices


def wants_dataset_ranges(scaling: str, *, dtype: str, bands: int, georeferenced: bool, selected: bool) -> bool:
    """Whether images of this kind are scaled by the training set's per-band ranges (see the module)."""
    if scaling not in SCALINGS:
        raise PixelwiseError(f"scaling {scaling!r}: choose one of {', '.join(SCALINGS)}")
    if dtype in ("uint8", "bool") or scaling == "image":
        return False
    return scaling == "dataset" or bands not in (1, 3) or georeferenced or selected


def nodata_pixels(values: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """(H, W) bool: pixels whose every band is ``nodata`` (or NaN); None when there are none.

    >>> nodata_pixels(np.array([[[0, 0], [0, 5]]]), 0).tolist()
    [[True, False]]
    """
    missing: np.ndarray | None = None
    if np.issubdtype(values.dtype, np.floating):
        missing = np.isnan(values).all(axis=2)
    # a value the stored type cannot hold (-9999 in uint16) is never stored: nothing to compare
    if nodata is not None and not np.isnan(nodata) and _holds(values.dtype, nodata):
        equal = (values == nodata).all(axis=2)
        missing = equal if missing is None else missing | equal
    return missing if missing is not None and missing.any() else None


def _holds(dtype: np.dtype[Any], value: float) -> bool:
    """Whether ``dtype`` stores ``value`` exactly."""
    if dtype == np.bool_:
        return value in (0, 1)
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        return float(value).is_integer() and limits.min <= value <= limits.max
    return True


def image_range(values: np.ndarray, missing: np.ndarray | None = None) -> tuple[float, float]:
    """The per-image range: the 0.5 and 99.5 percentiles of the finite values of every band together (min and
    max where they meet; (0, 0), which gives zeros, for a constant image or one without finite values)."""
    chosen = values if missing is None else values[~missing]
    flat = chosen.astype(np.float64).reshape(-1)
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if high <= low:
        low, high = finite.min(), finite.max()
    if high <= low:
        return 0.0, 0.0
    return float(low), float(high)


def to_unit_range(
    values: np.ndarray, *, ranges: BandRanges | None = None, missing: np.ndarray | None = None
) -> np.ndarray:
    """Stored values (H, W, C) -> float32 in [0, 1]: uint8 / 255, bool as 0 / 1, else by ``ranges`` (per band)
    or, without them, by the image's own range (``image_range``); no-data pixels (``missing``) become 0."""
    if values.dtype == np.uint8:
        scaled = np.ascontiguousarray(values, dtype=np.float32) / np.float32(255)
    elif values.dtype == np.bool_:
        scaled = values.astype(np.float32)
    elif ranges is None:
        low, high = image_range(values, missing)
        scaled = apply_ranges(values, BandRanges((low,) * values.shape[2], (high,) * values.shape[2]))
    else:
        if len(ranges.low) != values.shape[2]:
            raise PixelwiseError(f"{len(ranges.low)} band ranges for an image of {values.shape[2]} bands")
        scaled = apply_ranges(values, ranges, exact=False)
    if missing is not None:
        scaled[missing] = 0.0
    return scaled


def apply_ranges(values: np.ndarray, ranges: BandRanges, *, exact: bool = True) -> np.ndarray:
    """``clip((x - low) / (high - low), 0, 1)`` per band, NaN -> 0; a band whose range is empty (high <= low)
    becomes 0 (float32 out). ``exact``: in float64, the per-image formula from before bands existed (grey and
    RGB values stay bit for bit); else in float32, four times faster on multispectral tiles (uint16 values
    are exact in float32; the result differs by rounding only)."""
    low = np.asarray(ranges.low, dtype=np.float64)
    high = np.asarray(ranges.high, dtype=np.float64)
    empty = high <= low
    if empty.all():
        return np.zeros(values.shape, dtype=np.float32)
    if exact:
        scaled = np.clip((values.astype(np.float64) - low) / np.where(empty, 1.0, high - low), 0.0, 1.0)
        scaled = np.nan_to_num(scaled, nan=0.0).astype(np.float32)
    else:
        scaled = values.astype(np.float32)
        scaled -= low.astype(np.float32)
        scaled *= (1.0 / np.where(empty, 1.0, high - low)).astype(np.float32)
        np.clip(scaled, 0.0, 1.0, out=scaled)
        if np.issubdtype(values.dtype, np.floating):
            np.nan_to_num(scaled, copy=False, nan=0.0)
    if empty.any():
        scaled[..., empty] = 0.0
    return scaled


def dataset_ranges(images: Iterable[tuple[np.ndarray, np.ndarray | None]], *, images_count: int) -> BandRanges:
    """Per-band 0.5–99.5 percentiles over training images given as (stored values (H, W, C), no-data pixels).

    Each image gives an even share of ``RANGE_SAMPLE`` pixels (every k-th valid pixel, deterministic); a band
    whose percentiles meet falls back to its min and max."""
    share = max(1, RANGE_SAMPLE // max(images_count, 1))
    drawn: list[np.ndarray] = []
    for values, missing in images:
        flat = values.reshape(-1, values.shape[2]) if missing is None else values[~missing]
        step = max(1, flat.shape[0] // share)
        drawn.append(flat[::step].astype(np.float64))
    if not drawn:
        raise PixelwiseError("no training images to compute the band ranges from")
    pooled = np.concatenate(drawn)
    lows, highs = [], []
    for band in range(pooled.shape[1]):
        column = pooled[:, band]
        finite = column[np.isfinite(column)]
        low, high = (0.0, 0.0) if finite.size == 0 else np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE])
        if high <= low and finite.size:
            low, high = finite.min(), finite.max()
        lows.append(float(low))
        highs.append(float(high))
    return BandRanges(tuple(lows), tuple(highs))
