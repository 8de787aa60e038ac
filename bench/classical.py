"""Classical methods beside the fastest peer implementation, on the same 512×512 images, in one run.

    .venv/bin/python bench/classical.py [--repeat N]

For each method: pixelwise's median CPU time over N runs (and its wall time), the same without OpenCV
(``pixelwise.classical.kernels`` on SciPy and scikit-image, as without ``pixelwise[opencv]``), the peer's
median CPU time, and pixelwise / peer (below 1: pixelwise is faster). CPU times, because on a shared machine
the wall time includes waiting for a core, which the CPU time does not (everything runs on one thread). Images: scikit-image's ``camera`` (bundled, 8-bit grey) and the real nuclei image
(16-bit fluorescence, package data). Every call is made once before timing (imports, numba's cache).

Peers do not always run the same algorithm; the ``peer`` column says what ran. OpenCV's peers get the
8-bit image ready made (uint8) and return OpenCV's own output; pixelwise takes float32 in [0, 1], checks
it, finds whether it is 8-bit data, and returns int32 regions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from skimage import data, filters
from threadpoolctl import threadpool_limits

from pixelwise import classical
from pixelwise.classical import kernels
from pixelwise.data.io import read_image

NUCLEI = Path(__file__).resolve().parent.parent / "src" / "pixelwise" / "assets" / "nuclei" / "img2d.tif"


def median_ms(function: Callable[[], Any], repeat: int) -> float:
    """Median CPU time of ``function()`` in milliseconds, after one untimed call."""
    return timed(function, repeat)[1]


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process) of ``function()``, after one untimed call.

    On a shared machine the wall time includes waiting for a core; the CPU time does not.
    """
    function()  # warm-up: imports, numba's on-disk cache, allocator
    walls, cpus = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return 1000 * statistics.median(walls), 1000 * statistics.median(cpus)


# --- OpenCV pipelines doing what the pixelwise method does -------------------------------------------------


def cv_sobel_watershed(grey8: np.ndarray) -> np.ndarray:
    """Blur, Sobel magnitude, markers at the gradient's 21×21 local minima, watershed (on the image)."""
    smooth = cv2.GaussianBlur(grey8, (0, 0), 2.0)
    gradient = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    minima = (gradient == cv2.erode(gradient, np.ones((21, 21), np.uint8))).astype(np.uint8)
    _, markers = cv2.connectedComponents(minima)
    # cv2.watershed floods its own gradient of a 3-channel 8-bit image, from int32 markers
    return cv2.watershed(cv2.cvtColor(grey8, cv2.COLOR_GRAY2BGR), markers.astype(np.int32))


def cv_canny_regions(grey8: np.ndarray) -> np.ndarray:
    """Blur, Canny, closing with a 5×5 disk, fill holes (flood the outside from a corner), components."""
    edges = cv2.Canny(cv2.GaussianBlur(grey8, (0, 0), 2.0), 25, 51)
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    outside = closed.copy()
    mask = np.zeros((closed.shape[0] + 2, closed.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, mask, (0, 0), 255)
    filled = closed | cv2.bitwise_not(outside)
    return cv2.connectedComponents(filled)[1]


def cv_seeded_watershed(grey8: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """OpenCV's priority flood from the same seeds as region_grow, ordered by its own gradient (static)."""
    return cv2.watershed(cv2.cvtColor(grey8, cv2.COLOR_GRAY2BGR), labels.astype(np.int32))


def cv_flood(grey8: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """One seed, fixed range ±10 grey levels around the seed's value (``cv2.floodFill``)."""
    mask = np.zeros((grey8.shape[0] + 2, grey8.shape[1] + 2), np.uint8)
    cv2.floodFill(grey8.copy(), mask, (seed[1], seed[0]), 255, 10, 10, cv2.FLOODFILL_FIXED_RANGE | 4)
    return mask


def cv_kmeans(pixels: np.ndarray, clusters: int) -> np.ndarray:
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    flat = pixels.reshape(-1, pixels.shape[2]).astype(np.float32)
    return cv2.kmeans(flat, clusters, None, criteria, 3, cv2.KMEANS_PP_CENTERS)[1]


def rows(image: np.ndarray, repeat: int) -> list[tuple[str, tuple[float, ...], str, float | None]]:
    """(method, pixelwise (wall, CPU, CPU without OpenCV) ms, peer description, peer CPU ms or None) for one
    (H, W, 1) float32 image."""
    grey = image[:, :, 0]
    grey8 = (grey * 255).round().astype(np.uint8)
    # cv2.floodFill from the flattest 15×15 patch: fast, but it fills only the few percent of the image
    # within ±10 levels of one seed, so it is listed for reference, not as the region_grow peer
    spread = ndimage.uniform_filter(grey**2, 15) - ndimage.uniform_filter(grey, 15) ** 2
    inner = np.unravel_index(np.argmin(spread[8:-8, 8:-8]), (grey.shape[0] - 16, grey.shape[1] - 16))
    seed = (int(inner[0]) + 8, int(inner[1]) + 8)
    filled = float(cv_flood(grey8, seed)[1:-1, 1:-1].astype(bool).mean())
    seeds = classical.region.automatic_seeds(image, spacing=16, smoothing=2.0)
    labels = classical.region.seed_labels(seeds, grey.shape)
    values = np.ascontiguousarray(image.reshape(-1, 1))
    from pixelwise.classical._grow import grow_regions

    def kernel_only() -> None:
        grow_regions(values, labels.copy().ravel(), grey.shape[0], grey.shape[1], False, np.inf, int(labels.max()))

    def time_pixelwise(name: str, **options: Any) -> tuple[float, float, float]:
        with_opencv = timed(lambda: classical.segment(name, image, **options), repeat)
        opencv, kernels.opencv = kernels.opencv, lambda: None  # type: ignore[method-assign]
        try:
            without = median_ms(lambda: classical.segment(name, image, **options), repeat)
        finally:
            kernels.opencv = opencv  # type: ignore[method-assign]
        return (*with_opencv, without)

    watershed_ms = median_ms(lambda: cv_seeded_watershed(grey8, labels), repeat)
    otsu_times = time_pixelwise("otsu")
    flood_ms = median_ms(lambda: cv_flood(grey8, seed), repeat)

    return [
        ("otsu", otsu_times, "cv2.threshold OTSU (uint8)", median_ms(
            lambda: cv2.threshold(grey8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU), repeat)),
        ("  (same input and output)", otsu_times, "float -> uint8, OTSU, -> int32 labels", median_ms(
            lambda: cv2.threshold(cv2.convertScaleAbs(grey, alpha=255.0), 0, 1,
                                  cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1].astype(np.int32), repeat)),
        ("multi_otsu", time_pixelwise("multi_otsu"), "skimage threshold_multiotsu + digitize", median_ms(
            lambda: np.digitize(grey, filters.threshold_multiotsu(grey, classes=3)), repeat)),
        ("local_threshold", time_pixelwise("local_threshold"), "cv2.adaptiveThreshold Gaussian 35", median_ms(
            lambda: cv2.adaptiveThreshold(grey8, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 35, 0),
            repeat)),
        ("sobel_watershed", time_pixelwise("sobel_watershed"), "cv2 blur+Sobel+minima+watershed", median_ms(
            lambda: cv_sobel_watershed(grey8), repeat)),
        ("canny_regions", time_pixelwise("canny_regions"), "cv2 Canny+close+fill+components", median_ms(
            lambda: cv_canny_regions(grey8), repeat)),
        ("region_grow", time_pixelwise("region_grow"), "cv2.watershed from the same seeds", watershed_ms),
        ("region_grow, 8-connected", time_pixelwise("region_grow", connectivity=8), "(same)", watershed_ms),
        ("  its flood alone", (*timed(kernel_only, repeat), float("nan")), f"({len(seeds)} automatic seeds)",
            watershed_ms),
        ("  (reference)", (float("nan"),) * 3, f"cv2.floodFill 1 seed ±10: {filled:.0%} filled", flood_ms),
        ("kmeans (k=4)", time_pixelwise("kmeans"), "cv2.kmeans all pixels, k-means++, 3 tries", median_ms(
            lambda: cv_kmeans(image, 4), repeat)),
        ("slic (250)", time_pixelwise("slic"), "none faster (scikit-image is the code)", None),
        ("felzenszwalb", time_pixelwise("felzenszwalb"), "none faster (scikit-image is the code)", None),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per method (median reported)")
    arguments = parser.parse_args()
    images = {
        "camera (skimage, 512×512 8-bit)": (data.camera().astype(np.float32) / 255)[:, :, None],
        "nuclei (BBBC038, 512×512 16-bit)": read_image(NUCLEI),
    }
    threadpool_limits(1)  # one thread everywhere: CPU time is then the time on a free core
    cv2.setNumThreads(1)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; one thread; "
          f"median of {arguments.repeat} runs; CPU ms")  # fmt: skip
    for title, image in images.items():
        print(f"\n{title}\n")
        print(
            f"| {'method':<26} | {'pixelwise':>9} | {'(wall)':>7} | {'no OpenCV':>9} | {'peer':<42} | "
            f"{'peer':>6} | {'ratio':>5} |"
        )
        print(f"| {'-' * 26} | {'-' * 8}: | {'-' * 6}: | {'-' * 8}: | {'-' * 42} | {'-' * 5}: | {'-' * 4}: |")
        for name, (ours, ours_cpu, without), peer, theirs in rows(image, arguments.repeat):
            ratio = f"{ours_cpu / theirs:5.1f}" if theirs and ours == ours else "    —"
            peer_ms = f"{theirs:6.2f}" if theirs else "     —"
            mine = f"{ours_cpu:9.2f} | {ours:7.1f}" if ours == ours else f"{'—':>9} | {'—':>7}"
            fallback = f"{without:9.2f}" if without == without else f"{'—':>9}"
            print(f"| {name:<26} | {mine} | {fallback} | {peer:<42} | {peer_ms} | {ratio} |")
    load = os.getloadavg()
    print(f"\nload average afterwards {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
