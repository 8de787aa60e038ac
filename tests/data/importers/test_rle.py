"""COCO RLE checks: the counts read from a compressed string are the runs pycocotools encoded."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.data.importers.rle import check_rle, counts_from_string, encode, rle_mask
from pixelwise.errors import PixelwiseError

pytest.importorskip("pycocotools")


def runs(binary: np.ndarray) -> list[int]:
    """The run lengths of the column-major pixels, starting with a run of 0s (possibly empty)."""
    flat = binary.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    lengths = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return ([0] if flat[0] else []) + lengths


@pytest.mark.parametrize("seed", range(6))
def test_counts_of_a_compressed_string_are_pycocotools_runs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 80, 2))
    binary = rng.random(shape) < rng.uniform(0.05, 0.95)  # many runs of every length, negative differences too
    encoded = encode(binary)
    assert counts_from_string(encoded["counts"], where="x") == runs(binary)
    np.testing.assert_array_equal(rle_mask(check_rle(encoded, shape, where="x"), shape), binary)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ("0", "its runs cover 0 pixels, the image has 2 × 3 = 6"),
        ("1P", "ends inside a number"),
        ("1O", "a negative run length"),
        ("`~", "'~' is not"),
    ],
)
def test_malformed_strings_are_refused(counts: str, message: str) -> None:
    with pytest.raises(PixelwiseError, match=message):
        check_rle({"size": [2, 3], "counts": counts}, (2, 3), where="x")


@pytest.mark.parametrize("seed", range(8))
def test_a_patch_encodes_as_its_whole_image_mask(seed: int) -> None:
    from pixelwise.data.importers.base import Patch
    from pixelwise.data.importers.rle import encode_patch

    rng = np.random.default_rng(seed)
    height, width = (int(side) for side in rng.integers(1, 40, 2))
    top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
    box = rng.random((int(rng.integers(1, height - top + 1)), int(rng.integers(1, width - left + 1)))) < 0.6
    if seed == 0:
        box[-1, -1] = True  # an object on the image's last pixel: no trailing run
    whole = np.zeros((height, width), bool)
    whole[top : top + box.shape[0], left : left + box.shape[1]] = box
    assert encode_patch(Patch(box, top, left), (height, width)) == encode(whole)
    with pytest.raises(ValueError, match="outside"):
        encode_patch(Patch(box, height, 0), (height, width))
