"""The compiled core of seeded region growing: a priority flood over a hierarchical FIFO queue.

Kept apart from ``region.py`` so that numba (about half a second to import, a few seconds to compile when
its on-disk cache is cold) is loaded only when region growing actually runs.

The queue has one first-in first-out list per dissimilarity level (the distance rounded down to a
multiple of ``1 / LEVELS_PER_UNIT``: a sixteenth of an 8-bit grey level) and a two-level bitmap of the
non-empty levels, so a push and a pop cost O(1). On our two-core machine a binary heap over exact
float keys took about 95 ms CPU for the flood of a 512×512 photo (450,000 queued entries, 100 seeds);
this queue about 45 ms. Finer levels (up to 65,536 per unit) measured the same within noise: the time
goes to memory traffic, because entries are served in dissimilarity order, which jumps across the image.
"""

from __future__ import annotations

import numba
import numpy as np

LEVELS_PER_UNIT = 4096

# de Bruijn sequence for the index of the lowest set bit of a 64-bit word (numba has no count-trailing-zeros)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.array(
    [0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30,
     24, 18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31,
     10, 25, 14, 19, 9, 13, 8, 7, 6],
    dtype=np.int64,
)  # fmt: skip
_ONE = np.uint64(1)


@numba.njit(cache=True, nogil=True)
def _lowest_bit(word: np.uint64) -> int:
    isolated = word & (~word + _ONE)
    return _DEBRUIJN_INDEX[np.int64((isolated * _DEBRUIJN) >> np.uint64(58))]


@numba.njit(cache=True, nogil=True)
def _set_level(words: np.ndarray, summary: np.ndarray, level: int) -> None:
    word = level >> 6
    words[word] |= _ONE << np.uint64(level & 63)
    summary[word >> 6] |= _ONE << np.uint64(word & 63)


@numba.njit(cache=True, nogil=True)
def _clear_level(words: np.ndarray, summary: np.ndarray, level: int) -> None:
    word = level >> 6
    words[word] &= ~(_ONE << np.uint64(level & 63))
    if words[word] == 0:
        summary[word >> 6] &= ~(_ONE << np.uint64(word & 63))


@numba.njit(cache=True, nogil=True)
def _next_level(words: np.ndarray, summary: np.ndarray, level: int) -> int:
    """The lowest non-empty level >= ``level``, or -1."""
    word = level >> 6
    if word >= words.shape[0]:
        return -1
    masked = words[word] & ~((_ONE << np.uint64(level & 63)) - _ONE)
    if masked != 0:
        return (word << 6) + _lowest_bit(masked)
    word += 1
    group = word >> 6
    if group >= summary.shape[0]:
        return -1
    masked = summary[group] & ~((_ONE << np.uint64(word & 63)) - _ONE) if (word & 63) != 0 else summary[group]
    while masked == 0:
        group += 1
        if group >= summary.shape[0]:
            return -1
        masked = summary[group]
    word = (group << 6) + _lowest_bit(masked)
    return (word << 6) + _lowest_bit(words[word])


@numba.njit(cache=True, nogil=True)
def _seed_sums(values: np.ndarray, labels: np.ndarray, num_regions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per region 1..num_regions: the sum of its seed pixels' values (num_regions + 1, C) and their count."""
    channels = values.shape[1]
    sums = np.zeros((num_regions + 1, channels))
    counts = np.zeros(num_regions + 1, np.int64)
    for pixel in range(labels.shape[0]):
        region = labels[pixel]
        if region > 0:
            counts[region] += 1
            for channel in range(channels):
                sums[region, channel] += values[pixel, channel]
    return sums, counts


@numba.njit(cache=True, nogil=True)
def _neighbour_steps(eight_connected: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row steps, column steps) to the 4 (or 8) neighbours, the 4 edge neighbours first."""
    if eight_connected:
        return np.array([-1, 0, 0, 1, -1, -1, 1, 1]), np.array([0, -1, 1, 0, -1, 1, -1, 1])
    return np.array([-1, 0, 0, 1]), np.array([0, -1, 1, 0])


@numba.njit(cache=True, nogil=True)
def grow_regions(
    values: np.ndarray,
    labels: np.ndarray,
    height: int,
    width: int,
    eight_connected: bool,
    tolerance: float,
    num_regions: int,
) -> None:
    """Grow the seed regions in ``labels`` in place (Adams & Bischof 1994).

    values: (H*W, C) float32 in [0, 1]; labels: (H*W,) int32, 0 = not yet in a region, 1..num_regions = seeds.
    A region that takes a pixel queues each free neighbour at its dissimilarity: the Euclidean colour
    distance to the region's mean at that moment (not re-evaluated later, as in the paper), rounded down
    to a level. The lowest level is served first, first in first out within a level; the pixel joins the
    region of that entry and the region's mean is updated. Distances above ``tolerance`` are never queued.
    """
    size = height * width
    channels = values.shape[1]
    sums, counts = _seed_sums(values, labels, num_regions)
    row_steps, column_steps = _neighbour_steps(eight_connected)

    num_levels = int(np.sqrt(channels) * LEVELS_PER_UNIT) + 2
    num_words = (num_levels + 63) >> 6
    words = np.zeros(num_words, np.uint64)
    summary = np.zeros((num_words + 63) >> 6, np.uint64)
    level_head = np.full(num_levels, -1, np.int32)
    level_tail = np.full(num_levels, -1, np.int32)

    # lowest level queued so far per pixel: a later entry at a level that is not lower would be served
    # after the earlier one, find the pixel taken and be dropped, so it is never queued (same result)
    best = np.full(size, num_levels, np.int32)
    capacity = 2 * size + 16
    # one row per entry (pixel, region, next entry of the same level), so one cache line per entry; int32
    # halves the memory traffic that dominates the run time (the caller checks that 8 * H * W fits)
    entries = np.empty((capacity, 3), np.int32)
    num_entries = 0
    lowest = num_levels  # no level lower than this one holds entries

    # the seed pixels first (raster order), then whatever the queue hands out
    seeds = np.flatnonzero(labels > 0)
    next_seed = 0
    mean = np.empty(channels)
    while True:
        if next_seed < seeds.shape[0]:
            pixel = seeds[next_seed]
            next_seed += 1
            region = labels[pixel]
        else:
            if level_head[min(lowest, num_levels - 1)] < 0:
                lowest = _next_level(words, summary, lowest)
                if lowest < 0:
                    break
            entry = level_head[lowest]
            pixel = entries[entry, 0]
            following = entries[entry, 2]
            level_head[lowest] = following
            if following < 0:
                level_tail[lowest] = -1
                _clear_level(words, summary, lowest)
            if labels[pixel] != 0:
                continue
            region = np.int32(entries[entry, 1])
            labels[pixel] = region
            counts[region] += 1
            for channel in range(channels):
                sums[region, channel] += values[pixel, channel]

        for channel in range(channels):
            mean[channel] = sums[region, channel] / counts[region]
        row = pixel // width
        column = pixel - row * width
        for step in range(row_steps.shape[0]):
            neighbour_row = row + row_steps[step]
            neighbour_column = column + column_steps[step]
            if neighbour_row < 0 or neighbour_row >= height or neighbour_column < 0 or neighbour_column >= width:
                continue
            neighbour = neighbour_row * width + neighbour_column
            if labels[neighbour] != 0:
                continue
            squared = 0.0
            for channel in range(channels):
                difference = values[neighbour, channel] - mean[channel]
                squared += difference * difference
            distance = np.sqrt(squared)
            if distance > tolerance:
                continue
            level = min(int(distance * LEVELS_PER_UNIT), num_levels - 1)
            if level >= best[neighbour]:
                continue
            best[neighbour] = level
            if num_entries == capacity:
                entries = np.concatenate((entries, np.empty((capacity, 3), np.int32)))
                capacity *= 2
            entry = num_entries
            num_entries += 1
            entries[entry, 0] = neighbour
            entries[entry, 1] = region
            entries[entry, 2] = -1
            if level_tail[level] < 0:
                level_head[level] = entry
                _set_level(words, summary, level)
            else:
                entries[level_tail[level], 2] = entry
            level_tail[level] = entry
            lowest = min(lowest, level)
