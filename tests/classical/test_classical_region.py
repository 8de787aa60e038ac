"""Seeded region growing: the compiled flood against a slow textbook implementation, and its contract."""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from pixelwise.classical import region_grow
from pixelwise.classical._grow import LEVELS_PER_UNIT
from pixelwise.classical.region import automatic_seeds
from pixelwise.errors import PixelwiseError

STEPS_4 = [(-1, 0), (0, -1), (0, 1), (1, 0)]
STEPS_8 = [*STEPS_4, (-1, -1), (-1, 1), (1, -1), (1, 1)]


def reference_grow(
    image: np.ndarray, seeds: np.ndarray, *, connectivity: int = 4, tolerance: float = math.inf, quantised: bool
) -> np.ndarray:
    """Adams & Bischof with one heap of every (δ, push order) entry, pure Python: slow but obviously right.

    image (H, W, C) float32, seeds (H, W) int with 0 = free. With ``quantised`` the key is δ rounded down
    to 1 / LEVELS_PER_UNIT, as in the fast version; without, the exact float δ.
    """
    height, width, channels = image.shape
    labels = seeds.astype(np.int64).copy()
    values = image.astype(np.float64)
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for row, column in zip(*np.nonzero(labels), strict=True):
        region = int(labels[row, column])
        sums[region] = sums.get(region, np.zeros(channels)) + values[row, column]
        counts[region] = counts.get(region, 0) + 1
    heap: list[tuple[float, int, int, int, int]] = []
    order = itertools.count()

    def push_neighbours(row: int, column: int, region: int) -> None:
        mean = sums[region] / counts[region]
        for row_step, column_step in STEPS_4 if connectivity == 4 else STEPS_8:
            near_row, near_column = row + row_step, column + column_step
            if 0 <= near_row < height and 0 <= near_column < width and labels[near_row, near_column] == 0:
                distance = math.sqrt(
                    sum((float(values[near_row, near_column, c]) - mean[c]) ** 2 for c in range(channels))
                )
                if distance <= tolerance:
                    key = math.floor(distance * LEVELS_PER_UNIT) if quantised else distance
                    heapq.heappush(heap, (key, next(order), near_row, near_column, region))

    for row, column in zip(*np.nonzero(labels), strict=True):
        push_neighbours(int(row), int(column), int(labels[row, column]))
    while heap:
        _, _, row, column, region = heapq.heappop(heap)
        if labels[row, column] != 0:
            continue
        labels[row, column] = region
        sums[region] = sums[region] + values[row, column]
        counts[region] += 1
        push_neighbours(row, column, region)
    return labels


def random_case(seed: int, channels: int, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A piecewise-smooth noisy image (so the regions have something to compete for) and 2–6 point seeds."""
    rng = np.random.default_rng(seed)
    base = rng.random((3, 3, channels))
    image = np.kron(base, np.ones((size // 3 + 1, size // 3 + 1, 1)))[:size, :size]
    image = np.clip(image + rng.normal(0, 0.08, image.shape), 0, 1).astype(np.float32)
    seeds = np.zeros((size, size), np.int64)
    points = rng.choice(size * size, rng.integers(2, 7), replace=False)
    seeds.ravel()[points] = np.arange(1, len(points) + 1)
    return image, seeds


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("connectivity", [4, 8])
def test_same_result_as_the_textbook_heap_on_the_same_levels(channels: int, connectivity: int) -> None:
    for seed in range(12):
        image, seeds = random_case(seed, channels)
        tolerance = 0.2 if seed % 3 == 0 else None
        fast = region_grow(image, seeds=seeds, connectivity=connectivity, tolerance=tolerance)
        slow = reference_grow(
            image,
            seeds,
            connectivity=connectivity,
            tolerance=math.inf if tolerance is None else tolerance,
            quantised=True,
        )
        grown = slow > 0  # pixels no region reached are numbered separately below
        np.testing.assert_array_equal(fast[grown], slow[grown], err_msg=f"case {seed}")
        assert (fast[~grown] > seeds.max()).all()


def test_levels_change_almost_nothing_against_exact_float_order() -> None:
    # the documented difference: δ rounded to 1/4096, first come first served within a level
    agreement = []
    for seed in range(6):
        image, seeds = random_case(100 + seed, 1, size=30)
        fast = region_grow(image, seeds=seeds)
        exact = reference_grow(image, seeds, quantised=False)
        agreement.append(np.mean(fast == exact))
    assert min(agreement) >= 0.97, agreement
    assert np.mean(agreement) >= 0.99, agreement


def test_hand_worked_competition() -> None:
    # left queues 0.35 at δ 0.35, right queues 0.6 at δ 0.4; left takes 0.35 first and its mean becomes
    # 0.175, so 0.6 is now 0.425 from it: the right region's earlier, smaller δ wins
    image = np.array([[0.0, 0.35, 0.6, 1.0]], np.float32)
    assert region_grow(image, seeds=[(0, 0), (0, 3)]).tolist() == [[1, 1, 2, 2]]
    # the running mean matters: after taking 0.3 the left mean is 0.15, so 0.55 is 0.4 from it and 0.45
    # from the right seed: it goes left, though it is nearer to 1.0 (0.45) than to the seed value 0.0 (0.55)
    image = np.array([[0.0, 0.3, 0.55, 1.0]], np.float32)
    assert region_grow(image, seeds=[(0, 0), (0, 3)]).tolist() == [[1, 1, 1, 2]]


def test_regions_are_connected_and_keep_their_seeds() -> None:
    image, seeds = random_case(7, 3, size=24)
    for connectivity in (4, 8):
        labels = region_grow(image, seeds=seeds, connectivity=connectivity)
        assert (labels[seeds > 0] == seeds[seeds > 0]).all()
        structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
        for region in np.unique(labels):
            _, pieces = ndimage.label(labels == region, structure=structure)
            assert pieces == 1


def test_tolerance_leaves_unlike_pixels_as_their_own_regions() -> None:
    image = np.full((5, 5), 0.2, np.float32)
    image[2, 2] = 0.9  # an outlier in the middle
    image[:, 4] = 0.7  # a column unlike the seed
    labels = region_grow(image, seeds=[(0, 0)], tolerance=0.1)
    assert (labels[:, :4][image[:, :4] == np.float32(0.2)] == 1).all()
    assert labels[2, 2] != 1 and (labels[:, 4] != 1).all()
    assert labels[2, 2] != labels[0, 4]  # two separate leftover groups
    assert len(np.unique(labels)) == 3
    assert (region_grow(image, seeds=[(0, 0)]) == 1).all()  # without a tolerance the seed takes everything


def test_seed_label_array_with_several_pixels_per_region() -> None:
    image = np.array([[0.0, 0.2, 0.5, 0.9, 1.0]], np.float32)
    seeds = np.array([[1, 1, 0, 2, 2]])  # means 0.1 and 0.95: 0.5 is 0.4 from the left, 0.45 from the right
    assert region_grow(image, seeds=seeds).tolist() == [[1, 1, 1, 2, 2]]


def test_ties_go_first_come_first_served_in_raster_order() -> None:
    # both sides reach 0.5 at δ 0.45 (means 0.05 and 0.95 after one step each); the seed first in raster
    # order queued first, whatever its label
    image = np.array([[0.0, 0.1, 0.5, 0.9, 1.0]], np.float32)
    assert region_grow(image, seeds=np.array([[1, 0, 0, 0, 2]])).tolist() == [[1, 1, 1, 2, 2]]
    assert region_grow(image, seeds=np.array([[2, 0, 0, 0, 1]])).tolist() == [[2, 2, 2, 1, 1]]


def test_automatic_seeds_find_each_blob_and_the_background() -> None:
    rows, columns = np.mgrid[0:64, 0:64]
    blobs = [(16, 16), (44, 40)]
    image = np.full((64, 64), 0.1)
    for row, column in blobs:
        image += 0.8 * np.exp(-((rows - row) ** 2 + (columns - column) ** 2) / (2 * 5.0**2))
    image = image.astype(np.float32)
    points = automatic_seeds(image[:, :, None], spacing=8, smoothing=1.0)
    for row, column in blobs:
        assert np.abs(points - [row, column]).max(axis=1).min() <= 1
    labels = region_grow(image, seed_spacing=8, smoothing=1.0, tolerance=0.2)
    bright = image > 0.6
    for row, column in blobs:
        assert (labels[bright & (np.hypot(rows - row, columns - column) < 6)] == labels[row, column]).all()
    assert labels[16, 16] != labels[44, 40] != labels[0, 0]


def test_constant_image_is_one_region() -> None:
    assert (region_grow(np.full((6, 7), 0.5, np.float32)) == 1).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seeds": [(0, 9)]}, "outside"),
        ({"seeds": [(1, 1), (1, 1)]}, "share a pixel"),
        ({"seeds": [(0.5, 1.0)]}, "integer points"),
        ({"connectivity": 6}, "4 or 8"),
        ({"tolerance": -1.0}, ">= 0"),
        ({"seeds": np.zeros((4, 4), int)}, "no seed"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PixelwiseError, match=message):
        region_grow(np.zeros((4, 4), np.float32), **options)
