"""Regions by clustering pixels: k-means on colour (and position), SLIC and Felzenszwalb superpixels.

Each takes (H, W) or (H, W, C) float in [0, 1] and returns (H, W) int32 region labels. scikit-learn is
imported inside ``kmeans`` only (it takes about a second to import).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from pixelwise.classical._common import check_image, luminance
from pixelwise.settings import AT_LEAST_ONE, NON_NEGATIVE, checked_options


@checked_options
def kmeans(
    image: np.ndarray,
    *,
    clusters: Annotated[int, AT_LEAST_ONE] = 4,
    position_weight: Annotated[float, NON_NEGATIVE] = 0.0,
    seed: Annotated[int, NON_NEGATIVE] = 0,
    sample_size: Annotated[int, AT_LEAST_ONE] = 20000,
) -> np.ndarray:
    """k-means clustering of the pixels' colours (optionally with their positions), clusters darkest first.

    Features per pixel are its channel values, plus ``position_weight * (row, column) / max(H, W)`` when
    ``position_weight > 0`` (so that a weight of 1 makes crossing the image count as much as going from
    black to white, and clusters become spatially compact). The centres are fitted with
    ``sklearn.cluster.KMeans`` (k-means++ start, 3 restarts, seeded) on at most ``sample_size`` pixels
    drawn at random, then every pixel takes its nearest centre: on 512×512 this is several times faster
    than fitting on all 262,144 pixels, and the centres move little.

    Clusters are numbered by the luminance of their centre, darkest first, so that a cluster index means
    the same thing on every image (as threshold bins do).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]
    clusters : number of clusters k
    position_weight : weight of the pixel position among the features; 0 for colour only
    seed : random seed of the sample and of k-means++
    sample_size : at most this many pixels fit the centres

    Returns
    -------
    (H, W) int32 cluster indices 0..k-1 (fewer when the sample has fewer distinct colours than k).

    Examples
    --------
    >>> image = np.array([[0.1, 0.1, 0.5, 0.9], [0.1, 0.5, 0.9, 0.9]])
    >>> kmeans(image, clusters=3)
    array([[0, 0, 1, 2],
           [0, 1, 2, 2]], dtype=int32)
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    pixels = check_image(image, method="kmeans")
    height, width, channels = pixels.shape

    features = pixels.reshape(-1, channels)
    if position_weight > 0:
        rows, columns = np.indices((height, width), dtype=np.float32).reshape(2, -1)
        scale = np.float32(position_weight / max(height, width))
        features = np.concatenate([features, rows[:, None] * scale, columns[:, None] * scale], axis=1)
    rng = np.random.default_rng(seed)
    sample = (
        features if len(features) <= sample_size else features[rng.choice(len(features), sample_size, replace=False)]
    )
    # k-means cannot place more distinct centres than there are distinct points
    clusters = min(clusters, len(np.unique(sample, axis=0)))
    # one OpenMP thread: on our busy two-core machine libgomp's waiting threads made a 576-pixel fit take
    # 0.3–1.3 s instead of 15 ms; the 512×512 case loses nothing measurable
    with threadpool_limits(limits=1, user_api="openmp"):
        model = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(sample)
        assigned = model.predict(features)
    centres = model.cluster_centers_[:, :channels].reshape(clusters, 1, channels)
    brightness = luminance(centres.astype(np.float32))[:, 0]
    rank = np.empty(clusters, np.int32)
    rank[np.argsort(brightness, kind="stable")] = np.arange(clusters, dtype=np.int32)
    return rank[assigned].reshape(height, width)


@checked_options
def slic(
    image: np.ndarray,
    *,
    segments: Annotated[int, AT_LEAST_ONE] = 250,
    compactness: Annotated[float, NON_NEGATIVE] = 10.0,
    sigma: Annotated[float, NON_NEGATIVE] = 0.0,
) -> np.ndarray:
    """SLIC superpixels (Achanta et al. 2012): k-means in colour + position, restricted to a local window.

    Colour images are clustered in CIELAB (scikit-image's default), whose lightness spans 0–100. A grey
    image reaches scikit-image rescaled to [0, 1] (it rescales every input by its min and max), so its
    ``compactness`` is divided by 100: the same value means the same balance for grey and colour images.
    Passed unchanged, 10 would outweigh any grey difference and every superpixel would be a grid square,
    blind to the image (seen on the fashion scenes: identical partitions with and without noise).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]
    segments : approximate number of superpixels
    compactness : balance of colour against position; higher gives more regular, square superpixels
    sigma : Gaussian smoothing before clustering, in pixels

    Returns
    -------
    (H, W) int32 superpixel labels 1..n, each connected.

    Examples
    --------
    >>> image = np.zeros((6, 8)); image[:, 4:] = 1.0
    >>> slic(image, segments=2)
    array([[1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2],
           [1, 1, 1, 1, 2, 2, 2, 2]], dtype=int32)
    """
    from skimage.segmentation import slic as skimage_slic

    pixels = check_image(image, method="slic")
    if pixels.shape[2] == 1:
        labels = skimage_slic(
            pixels[:, :, 0], n_segments=segments, compactness=compactness / 100.0, sigma=sigma, channel_axis=None
        )
    else:
        labels = skimage_slic(pixels, n_segments=segments, compactness=compactness, sigma=sigma, channel_axis=-1)
    return labels.astype(np.int32)


@checked_options
def felzenszwalb(
    image: np.ndarray,
    *,
    scale: Annotated[float, NON_NEGATIVE] = 100.0,
    sigma: Annotated[float, NON_NEGATIVE] = 0.8,
    min_size: Annotated[int, AT_LEAST_ONE] = 50,
) -> np.ndarray:
    """Felzenszwalb & Huttenlocher's (2004) graph-based segmentation: merge while edges are weaker than inside.

    Parameters
    ----------
    image : (H, W) or (H, W, C) float array in [0, 1]
    scale : larger merges more, giving larger regions
    sigma : Gaussian smoothing before building the graph, in pixels
    min_size : regions smaller than this many pixels are merged into a neighbour

    Returns
    -------
    (H, W) int32 region labels 0..n-1.

    Examples
    --------
    >>> image = np.zeros((4, 6)); image[:, 3:] = 1.0
    >>> felzenszwalb(image, scale=1.0, sigma=0.0, min_size=2)
    array([[0, 0, 0, 1, 1, 1],
           [0, 0, 0, 1, 1, 1],
           [0, 0, 0, 1, 1, 1],
           [0, 0, 0, 1, 1, 1]], dtype=int32)
    """
    from skimage.segmentation import felzenszwalb as skimage_felzenszwalb

    pixels = check_image(image, method="felzenszwalb")
    if pixels.shape[2] == 1:
        labels = skimage_felzenszwalb(pixels[:, :, 0], scale=scale, sigma=sigma, min_size=min_size, channel_axis=None)
    else:
        labels = skimage_felzenszwalb(pixels, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1)
    return labels.astype(np.int32)
