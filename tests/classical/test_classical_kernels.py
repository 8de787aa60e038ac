"""The kernels under the classical methods: OpenCV and the SciPy / scikit-image fallback give the same results.

Every test that compares runs the same inputs through both paths: OpenCV as installed, and the fallback by
making ``kernels.opencv()`` answer None (what a machine without ``pixelwise[opencv]`` sees).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.filters import threshold_local
from skimage.measure import label
from skimage.morphology import closing, disk

from pixelwise import classical
from pixelwise.classical import kernels
from pixelwise.classical.kernels import LEVELS

pytest.importorskip("cv2", reason="the OpenCV path needs pixelwise[opencv]")


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], Any]:
    """``fallback(call)``: ``call()`` as on a machine without OpenCV."""

    def run(call: Callable[[], Any]) -> Any:
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "opencv", lambda: None)
            return call()

    return run


def eight_bit(generator: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return LEVELS[generator.integers(0, 256, shape)]


def scenes() -> Iterator[tuple[str, np.ndarray]]:
    """8-bit and float images: a photo, flat scenes with shapes (ties everywhere), noise, tiny and thin ones."""
    generator = np.random.default_rng(0)
    yield "camera", data.camera()[::2, ::2].astype(np.float32) / np.float32(255)
    yield "astronaut (RGB)", data.astronaut()[::4, ::4].astype(np.float32) / np.float32(255)
    scene = np.full((64, 80), LEVELS[40], np.float32)
    scene[10:30, 12:40] = LEVELS[200]
    rows, columns = np.ogrid[:64, :80]
    scene[(rows - 45) ** 2 + (columns - 55) ** 2 < 120] = LEVELS[120]
    yield "flat scene", scene
    yield "flat scene, noisy (float)", np.clip(scene + generator.normal(0, 0.05, scene.shape), 0, 1).astype(np.float32)
    yield "black with one item", np.where(scene == LEVELS[200], scene, np.float32(0))
    yield "ramp", np.tile(LEVELS[np.arange(0, 256, 4)], (20, 1))
    for shape in [(1, 1), (1, 9), (3, 2), (7, 50), (33, 5)]:
        yield f"8-bit {shape}", eight_bit(generator, shape)
        yield f"float {shape}", generator.random(shape, dtype=np.float32)


SCENES = list(scenes())
METHODS: list[tuple[str, dict[str, Any]]] = [
    ("otsu", {}),
    ("otsu", {"bins": 37}),
    ("multi_otsu", {}),
    ("multi_otsu", {"classes": 4}),
    ("local_threshold", {}),
    ("local_threshold", {"block_size": 5, "offset": -0.01}),
    ("local_threshold", {"method": "median", "block_size": 7}),
    ("local_threshold", {"method": "mean"}),
    ("sobel_watershed", {}),
    ("canny_regions", {}),
    ("canny_regions", {"sigma": 1.0, "closing_radius": 1, "min_size": 3}),
    ("region_grow", {}),
    ("region_grow", {"connectivity": 8, "tolerance": 0.05}),
]


def outcome(call: Callable[[], np.ndarray]) -> Any:
    try:
        return call()
    except Exception as error:  # the same refusal either way (multi_otsu on too few levels)
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize(("method", "options"), METHODS, ids=[f"{m}{o or ''}" for m, o in METHODS])
def test_each_method_gives_the_same_regions_with_and_without_opencv(
    method: str, options: dict[str, Any], fallback: Callable[[Callable[[], Any]], Any]
) -> None:
    for name, image in SCENES:
        with_opencv = outcome(lambda image=image: classical.segment(method, image, **options))
        without = fallback(lambda image=image: outcome(lambda: classical.segment(method, image, **options)))
        if isinstance(with_opencv, str):
            assert with_opencv == without, name
        else:
            np.testing.assert_array_equal(with_opencv, without, err_msg=name)
            assert with_opencv.dtype == without.dtype == np.int32


def test_eight_bit_data_is_what_read_image_makes_of_an_eight_bit_file() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = levels.astype(np.float32) / np.float32(255)  # data.io's conversion
    found = kernels.as_levels(image)
    assert found is not None and np.array_equal(found, levels)
    assert kernels.as_levels(image + np.float32(1e-7)) is None  # one ulp off is not 8-bit data
    assert kernels.as_levels(image.astype(np.float64)) is None
    assert kernels.as_levels(np.full((2, 2), 0.5, np.float32)) is None


def test_the_local_gaussian_threshold_is_scikit_images_bit_for_bit(
    fallback: Callable[[Callable[[], Any]], Any],
) -> None:
    """Pixels within rounding of their threshold are the hard part: flat windows, ramps, a photo's 0.2 %."""
    for name, image in SCENES:
        grey = image if image.ndim == 2 else image.mean(axis=2, dtype=np.float32)
        for block_size, offset in [(35, 0.0), (5, 0.0), (11, -0.02), (3, 0.5)]:
            expected = grey > threshold_local(grey, block_size, "gaussian", offset, mode="reflect")
            found = kernels.above_local_mean(grey, block_size=block_size, offset=offset)
            np.testing.assert_array_equal(found, expected, err_msg=f"{name}, block {block_size}")
            assert np.array_equal(fallback(lambda g=grey, b=block_size, o=offset: kernels.above_local_mean(
                g, block_size=b, offset=o)), expected)  # fmt: skip


def test_scipys_gaussian_is_recomputed_exactly_at_chosen_pixels() -> None:
    generator = np.random.default_rng(3)
    for grey in [data.camera()[:60, :70].astype(np.float32) / 255, generator.random((5, 3), dtype=np.float32)]:
        for sigma in (0.5, 2.0, 5.0):
            expected = np.zeros_like(grey)
            ndimage.gaussian_filter(grey, sigma, output=expected, mode="reflect")
            rows, columns = np.nonzero(np.ones(grey.shape, bool))
            found = kernels._scipy_gaussian_at(grey, kernels.gaussian_kernel(sigma), rows, columns)
            np.testing.assert_array_equal(found, expected[rows, columns])


def test_connected_components_are_numbered_as_scipy_numbers_them(
    fallback: Callable[[Callable[[], Any]], Any],
) -> None:
    generator = np.random.default_rng(1)
    for _ in range(40):
        mask = generator.random(tuple(generator.integers(1, 40, 2))) < generator.uniform(0.2, 0.8)
        for connectivity, structure in ((4, None), (8, np.ones((3, 3)))):
            expected, count = ndimage.label(mask, structure=structure)
            assert np.array_equal(label(mask, connectivity=connectivity // 4), expected)
            for labels, found in [
                kernels.connected_components(mask, connectivity=connectivity),
                fallback(lambda m=mask, c=connectivity: kernels.connected_components(m, connectivity=c)),
            ]:
                assert found == count and labels.dtype == np.int32
                np.testing.assert_array_equal(labels, expected)


def test_the_distance_transform_is_scipys_bit_for_bit(fallback: Callable[[Callable[[], Any]], Any]) -> None:
    generator = np.random.default_rng(2)
    masks = [generator.random(tuple(generator.integers(1, 60, 2))) < generator.uniform(0.5, 0.999) for _ in range(40)]
    far = np.ones((300, 400), bool)
    far[0, 0] = False  # distances up to 500 pixels
    for mask in [*masks, far, np.ones((2, 3), bool), np.zeros((1, 1), bool)]:
        expected = ndimage.distance_transform_edt(mask)
        for found in (kernels.distance_transform(mask), fallback(lambda m=mask: kernels.distance_transform(m))):
            assert found.dtype == np.float64
            np.testing.assert_array_equal(found, expected)


def test_hole_filling_closing_and_square_filters_match_scipy_and_scikit_image(
    fallback: Callable[[Callable[[], Any]], Any],
) -> None:
    generator = np.random.default_rng(4)
    for _ in range(30):
        shape = tuple(int(side) for side in generator.integers(1, 40, 2))
        mask = generator.random(shape) < generator.uniform(0.1, 0.6)
        surface = generator.random(shape, dtype=np.float32)
        for run in (lambda call: call(), fallback):
            assert np.array_equal(run(lambda m=mask: kernels.fill_holes(m)), ndimage.binary_fill_holes(mask))
            for radius in (1, 2, 3):
                found = run(lambda m=mask, r=radius: kernels.closing(m, disk(r)))
                assert np.array_equal(found, closing(mask, disk(radius)))
            for size in (1, 3, 21):
                assert np.array_equal(
                    run(lambda s=surface, n=size: kernels.minimum_filter(s, n)),
                    ndimage.minimum_filter(surface, size=size, mode="nearest"),
                )
                assert np.array_equal(
                    run(lambda s=surface, n=size: kernels.maximum_filter(s, n)),
                    ndimage.maximum_filter(surface, size=size, mode="nearest"),
                )


def test_the_median_of_eight_bit_levels_is_scipys(fallback: Callable[[Callable[[], Any]], Any]) -> None:
    generator = np.random.default_rng(5)
    for shape in [(40, 30), (9, 60), (3, 3)]:
        levels = generator.integers(0, 256, shape).astype(np.uint8)
        for block_size in (3, 7, 35):
            expected = ndimage.median_filter(levels, size=block_size, mode="reflect")
            assert np.array_equal(kernels.median_levels(levels, block_size), expected)
            assert np.array_equal(fallback(lambda v=levels, b=block_size: kernels.median_levels(v, b)), expected)
