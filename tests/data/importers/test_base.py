"""The rules shapes share: classes and the background, uncovered pixels, overlaps, distinct colours."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.data.importers.base import ImportOptions, Layer, Patch, distinct_colors, paint, shape_classes
from pixelwise.errors import PixelwiseError


def square(top: int, left: int, side: int) -> Layer:
    return Layer(0, lambda: Patch(np.ones((side, side), dtype=bool), top, left))


def test_later_layers_paint_over_earlier_ones_unless_smaller_go_on_top() -> None:
    small, large = square(3, 3, 2), square(1, 1, 6)
    layers = [Layer(1, small.patch), Layer(2, large.patch)]
    later = paint((8, 8), 0, layers)
    assert (later[1:7, 1:7] == 2).all() and later[0, 0] == 0
    smaller_on_top = paint((8, 8), 9, layers, overlap_rule="smaller-on-top")
    assert (smaller_on_top[3:5, 3:5] == 1).all() and smaller_on_top[1, 1] == 2 and smaller_on_top[0, 0] == 9


def test_the_background_is_class_0_made_up_named_or_chosen() -> None:
    made_up = shape_classes(["dog", "cat"], None, ImportOptions(), source="x")
    assert made_up.spec.names == ("background", "dog", "cat") and made_up.fill == 0
    named = shape_classes(["dog", "Background", "cat"], None, ImportOptions(), source="x")
    assert named.spec.names == ("Background", "dog", "cat") and named.values["Background"] == 0
    chosen = shape_classes(["dog", "void"], None, ImportOptions(background="void"), source="x")
    assert chosen.spec.names == ("void", "dog")
    ignored = shape_classes(["dog", "__ignore__"], None, ImportOptions(uncovered="ignore"), source="x")
    assert ignored.spec.names == ("dog",) and ignored.fill == 255 and ignored.values["__ignore__"] == 255
    with pytest.raises(PixelwiseError, match=r"--background 'vod' \(did you mean 'void'\?\) is not a label of x"):
        shape_classes(["dog", "void"], None, ImportOptions(background="vod"), source="x")


def test_missing_repeated_and_white_colours_are_replaced() -> None:
    colors = distinct_colors([None, (128, 0, 0), (128, 0, 0), (255, 255, 255), (0, 0, 0)])
    assert colors[1] == (128, 0, 0) and colors[4] == (0, 0, 0)
    assert len(set(colors)) == 5 and (255, 255, 255) not in colors
