"""Thresholds, edge regions and clustering: exact answers on tiny arrays, colour handling, refusals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from skimage.filters import threshold_multiotsu, threshold_otsu

from pixelwise.classical import (
    canny_regions,
    felzenszwalb,
    kmeans,
    local_threshold,
    multi_otsu,
    otsu,
    slic,
    sobel_watershed,
)
from pixelwise.errors import PixelwiseError


def test_otsu_exact_on_a_tiny_bimodal_image() -> None:
    image = np.array([[0.1, 0.2, 0.1, 0.8, 0.9], [0.2, 0.1, 0.7, 0.9, 0.8]], np.float32)
    expected = [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]
    assert otsu(image).tolist() == expected
    assert otsu(image).dtype == np.int32
    assert otsu(image[:, :, None]).tolist() == expected  # (H, W, 1) is the same image


def test_otsu_on_colour_uses_the_luminance() -> None:
    # pure red (luminance 0.21) and pure green (0.72) on black: red stays below the threshold, green above
    image = np.zeros((2, 3, 3), np.float32)
    image[:, 1, 0] = 1.0
    image[:, 2, 1] = 1.0
    grey = 0.2125 * image[:, :, 0] + 0.7154 * image[:, :, 1] + 0.0721 * image[:, :, 2]
    assert otsu(image).tolist() == (grey > threshold_otsu(grey)).astype(int).tolist() == [[0, 0, 1], [0, 0, 1]]


def test_otsu_constant_image_is_one_bin() -> None:
    assert (otsu(np.full((3, 4), 0.3, np.float32)) == 0).all()


def brute_force_levels(image: np.ndarray, classes: int) -> np.ndarray:
    """The split of the sorted distinct levels into ``classes`` runs with the largest between-class variance."""
    levels, ranks = np.unique(image, return_inverse=True)
    weights = np.bincount(ranks.ravel())
    best, best_cuts = -1.0, ()
    for cuts in itertools.combinations(range(1, len(levels)), classes - 1):
        bounds = (0, *cuts, len(levels))
        variance = 0.0
        for start, stop in itertools.pairwise(bounds):
            weight = weights[start:stop].sum()
            variance += weight * (np.dot(weights[start:stop], levels[start:stop]) / weight) ** 2
        if variance > best + 1e-12:
            best, best_cuts = variance, cuts
    return np.searchsorted(np.asarray(best_cuts), ranks, side="right").reshape(image.shape)


@pytest.mark.parametrize("seed", range(5))
def test_otsu_and_multi_otsu_find_the_best_split_by_brute_force(seed: int) -> None:
    # levels on a coarse grid, so that each falls in its own histogram bin and the histogram search
    # sees the same problem as the brute force over the distinct levels
    rng = np.random.default_rng(seed)
    image = (rng.choice(8, size=(6, 7), p=rng.dirichlet(np.ones(8))) / 7).astype(np.float32)
    if len(np.unique(image)) < 4:
        image.ravel()[:4] = np.arange(4) / 7
    assert otsu(image).tolist() == brute_force_levels(image, 2).tolist()
    assert multi_otsu(image, classes=3).tolist() == brute_force_levels(image, 3).tolist()


def test_every_pixel_goes_with_its_histogram_bin() -> None:
    # three groups 10 standard deviations apart: scikit-image's threshold (a bin centre) with
    # np.digitize sends the brightest dark pixel to the middle class; the bin-wise split does not
    rng = np.random.default_rng(0)
    image = np.concatenate([rng.normal(level, 0.03, 40) for level in (0.2, 0.5, 0.8)]).reshape(8, 15)
    image = np.clip(image, 0, 1).astype(np.float32)
    labels = multi_otsu(image, classes=3)
    assert np.bincount(labels.ravel()).tolist() == [40, 40, 40]
    assert (labels.ravel() == np.repeat([0, 1, 2], 40)).all()
    assert np.bincount(np.digitize(image, threshold_multiotsu(image, classes=3)).ravel()).tolist() == [39, 40, 41]
    two = np.clip(np.concatenate([rng.normal(level, 0.03, 60) for level in (0.3, 0.7)]), 0, 1).astype(np.float32)
    assert (otsu(two.reshape(10, 12)).ravel() == np.repeat([0, 1], 60)).all()


def test_multi_otsu_with_fewer_levels_than_classes_puts_each_level_in_its_own_bin() -> None:
    image = np.array([[0.7, 0.2, 0.2, 0.7]], np.float32)
    assert multi_otsu(image, classes=4).tolist() == [[1, 0, 0, 1]]


def test_local_threshold_finds_a_faint_object_under_uneven_light() -> None:
    # a brightness ramp from left to right, with a small object 0.1 brighter than its surroundings
    image = np.tile(np.linspace(0.1, 0.9, 40, dtype=np.float32), (20, 1))
    image[8:12, 18:22] += 0.1
    image = np.clip(image, 0, 1)
    labels = local_threshold(image, block_size=15, method="mean", offset=-0.02)
    assert labels[8:12, 18:22].all()
    # within half a block of the left and right borders the mirrored ramp biases the local mean, so
    # only the inside is exact: there, the object and nothing else
    assert labels[:, 7:-7].sum() == 16
    assert otsu(image).sum() > 300  # one global threshold takes half the ramp


@pytest.mark.parametrize(
    ("options", "message"), [({"block_size": 4}, "odd"), ({"method": "max"}, "gaussian, mean, median")]
)
def test_local_threshold_refuses_bad_options(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PixelwiseError, match=message):
        local_threshold(np.zeros((5, 5), np.float32), **options)


def test_sobel_watershed_splits_along_the_edge() -> None:
    image = np.zeros((10, 12), np.float32)
    image[:, 6:] = 1.0
    labels = sobel_watershed(image, smoothing=0, marker_spacing=3)
    assert labels[:, :6].tolist() == [[1] * 6] * 10 and labels[:, 6:].tolist() == [[2] * 6] * 10
    assert (sobel_watershed(np.full((6, 6), 0.4, np.float32)) == 1).all()  # one plateau, one marker


def test_sobel_watershed_gives_small_objects_their_own_region() -> None:
    # 5×5 bright specks on noise: each is a basin of the gradient, so each gets a marker and a region
    rng = np.random.default_rng(4)
    image = rng.normal(0.2, 0.02, (40, 40))
    centres = [(8, 8), (8, 30), (30, 18)]
    for row, column in centres:
        image[row - 2 : row + 3, column - 2 : column + 3] = 0.8
    labels = sobel_watershed(np.clip(image, 0, 1).astype(np.float32), smoothing=1.0, marker_spacing=4)
    inside = [labels[row, column] for row, column in centres]
    assert len(set(inside)) == 3
    for (row, column), region in zip(centres, inside, strict=True):
        # the boundary follows the gradient ridge of the smoothed speck: its core is in, and the region
        # stays within a pixel of the speck instead of spreading into the noise
        assert (labels[row - 1 : row + 2, column - 1 : column + 2] == region).all()
        assert 9 <= (labels == region).sum() <= 49
        assert (labels[row - 3 : row + 4, column - 3 : column + 4] == region).sum() == (labels == region).sum()


def test_sobel_watershed_sees_colour_edges_that_luminance_hides() -> None:
    # red and a green of the same luminance: invisible in grey, an edge in the channels
    image = np.zeros((8, 10, 3), np.float32)
    image[:, :5, 0] = 1.0
    image[:, 5:, 1] = 0.2125 / 0.7154
    labels = sobel_watershed(image, smoothing=0, marker_spacing=3)
    assert len(np.unique(labels[:, :5])) == 1 and len(np.unique(labels[:, 5:])) == 1
    assert labels[0, 0] != labels[0, 9]
    grey = 0.2125 * image[:, :, 0] + 0.7154 * image[:, :, 1]
    assert np.ptp(grey) < 1e-6  # nothing for a luminance gradient to see


def test_canny_regions_fills_closed_contours_and_drops_small_ones() -> None:
    image = np.zeros((30, 30), np.float32)
    image[5:15, 5:15] = 1.0  # a 10×10 square
    image[22:25, 22:25] = 1.0  # a 3×3 square
    labels = canny_regions(image, sigma=1.0, closing_radius=0, min_size=20)
    # the square is inside region 1, and region 1 stays within one pixel of it (Canny puts an edge on
    # whichever of the two pixels along the step has the larger smoothed gradient)
    assert labels[5:15, 5:15].min() == 1
    assert labels[:4].max() == labels[:, :4].max() == labels[16:].max() == labels[:, 16:].max() == 0
    assert labels[20:, 20:].max() == 0  # the small square is filled (9 px) but below min_size
    assert set(np.unique(labels)) == {0, 1}


def test_kmeans_clusters_are_ordered_darkest_first_and_seeded() -> None:
    rng = np.random.default_rng(1)
    bright = rng.random((16, 16)) < 0.5
    image = np.stack([np.where(bright, 0.8, 0.2), np.where(bright, 0.6, 0.3), np.full((16, 16), 0.5)], axis=2)
    labels = kmeans(image.astype(np.float32), clusters=2)
    assert labels.tolist() == bright.astype(int).tolist()
    assert (kmeans(image.astype(np.float32), clusters=2, seed=5) == labels).all()


def test_kmeans_position_weight_makes_clusters_compact() -> None:
    image = np.full((8, 16), 0.5, np.float32)  # no colour information at all
    labels = kmeans(image, clusters=2, position_weight=1.0)
    # two side-by-side bands across the long axis (k-means stops near, not always at, the middle)
    assert (labels == labels[0]).all()
    assert np.count_nonzero(np.diff(labels[0])) == 1 and 5 <= np.argmax(np.diff(labels[0]) != 0) + 1 <= 11
    assert len(np.unique(kmeans(image, clusters=2))) == 1  # without position: one distinct colour, one cluster


def test_kmeans_subsample_gives_the_same_clusters_as_all_pixels_on_clear_data() -> None:
    rng = np.random.default_rng(2)
    image = np.clip(rng.normal(0.3, 0.02, (120, 120)), 0, 1).astype(np.float32)
    image[30:90, 30:90] = np.clip(rng.normal(0.7, 0.02, (60, 60)), 0, 1)
    sampled = kmeans(image, clusters=2, sample_size=500)
    assert (sampled == kmeans(image, clusters=2, sample_size=120 * 120)).all()
    assert sampled[30:90, 30:90].all() and sampled.sum() == 3600


def test_slic_grey_and_colour_follow_the_edge() -> None:
    grey = np.zeros((20, 20), np.float32)
    grey[:, 10:] = 1.0
    colour = np.repeat(grey[:, :, None], 3, axis=2)
    for image in (grey, colour):
        labels = slic(image, segments=4, compactness=10.0)
        assert labels.dtype == np.int32 and labels.min() >= 1
        # no superpixel straddles the edge
        for region in np.unique(labels):
            assert len(np.unique(grey[labels == region])) == 1


def test_felzenszwalb_merges_flat_areas_and_keeps_the_edge() -> None:
    image = np.zeros((12, 12), np.float32)
    image[:, 6:] = 1.0
    labels = felzenszwalb(image, scale=10.0, sigma=0.0, min_size=5)
    assert len(np.unique(labels)) == 2 and labels[0, 0] != labels[0, 11]


@pytest.mark.parametrize("method", [otsu, multi_otsu, local_threshold, sobel_watershed, canny_regions, kmeans, slic])
def test_methods_refuse_images_outside_the_contract(method) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PixelwiseError, match=r"\[0, 1\]"):
        method(np.full((4, 4), 3.0))
    with pytest.raises(PixelwiseError, match="float"):
        method(np.zeros((4, 4), np.uint8))
    with pytest.raises(PixelwiseError, match="C = 1 or 3"):
        method(np.zeros((4, 4, 4), np.float32))


def test_slic_on_grey_follows_an_edge_off_the_grid() -> None:
    # four superpixels of a 12x12 image would split at column 6; the edge is at column 5
    image = np.zeros((12, 12))
    image[:, 5:] = 1.0
    labels = slic(image, segments=4)
    assert (labels[:, 4] != labels[:, 5]).all()
    assert all(len(np.unique(labels[row, 5:])) == 1 for row in range(12))
