"""The predictor's tile filter: skipped tiles are neither read nor run, run tiles blend exactly as in a whole
run, pixels no run tile covers are class 0."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pixelwise.data.sources import ArraySource
from pixelwise.inference.tiling import tile_starts

IMAGE = np.random.default_rng(0).integers(0, 256, (200, 150, 3)).astype(np.uint8)


def _logits(predictor: Any, image: Any, **options: Any) -> np.ndarray:
    return np.concatenate([band.values for band in predictor.stream(image, output="logits", **options)], axis=1)


def test_a_filter_that_takes_every_tile_changes_nothing(pyramids: Any) -> None:
    predictor = pyramids.mixing_predictor(tile_size=32, batch_size=3)
    np.testing.assert_array_equal(
        _logits(predictor, IMAGE, tile_filter=lambda *tile: True), predictor.predict_logits(IMAGE)
    )


def test_skipped_tiles_are_not_run_or_read_and_their_pixels_are_background(pyramids: Any) -> None:
    predictor = pyramids.mixing_predictor(tile_size=32, batch_size=3)
    whole = predictor.predict_logits(IMAGE)
    predictor.backend.tiles = 0

    def wanted(top: int, left: int, height: int, width: int) -> bool:
        return top < 80  # the upper part of the image only

    class Counting(ArraySource):
        tops: ClassVar[list[int]] = []

        def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
            self.tops.append(top)
            return super().read(top, left, height, width)

    done: list[int] = []
    source = Counting(IMAGE)
    logits = _logits(predictor, source, tile_filter=wanted, progress=done.append)
    tops = tile_starts(200, 32, 0.5)
    run = [top for top in tops if top < 80]
    first_skipped, uncovered = min(set(tops) - set(run)), max(run) + 32
    assert predictor.backend.tiles == len(run) * len(tile_starts(150, 32, 0.5))
    assert max(source.tops) < 80  # rows whose tiles are all skipped are never read
    assert sum(done) == predictor.tiles(200, 150)  # skipped tiles count as done
    # rows only run tiles cover: exactly the whole run's; rows no run tile covers: logits 0, label 0
    np.testing.assert_array_equal(logits[:, :first_skipped], whole[:, :first_skipped])
    assert logits[:, :uncovered].all() and not logits[:, uncovered:].any()
    labels = np.concatenate([band.values for band in predictor.stream(IMAGE, tile_filter=wanted)])
    assert not labels[uncovered:].any()
    probabilities = np.concatenate(
        [band.values for band in predictor.stream(IMAGE, output="probabilities", tile_filter=wanted)], axis=1
    )
    assert np.isfinite(probabilities).all()
    np.testing.assert_array_equal(probabilities[0, uncovered:], 1.0)
    np.testing.assert_array_equal(probabilities[1:, uncovered:], 0.0)


def test_a_resumed_filtered_run_gives_the_rows_of_a_whole_filtered_run(pyramids: Any) -> None:
    predictor = pyramids.mixing_predictor(tile_size=32, batch_size=2)

    def wanted(top: int, left: int, height: int, width: int) -> bool:
        return (top // 32 + left // 32) % 3 != 0

    whole = _logits(predictor, IMAGE, tile_filter=wanted)
    for start in (0, 50, 130):
        np.testing.assert_array_equal(_logits(predictor, IMAGE, tile_filter=wanted, start_row=start), whole[:, start:])
