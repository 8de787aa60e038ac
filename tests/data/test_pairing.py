"""Pairing predictions with truths by stem: the pairs in the truths' order, what was left out, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwise.data.pairing import MaskPair, pair_by_stem, truth_masks
from pixelwise.errors import PixelwiseError


def paths(folder: str, *names: str) -> list[Path]:
    return [Path(folder) / name for name in names]


def test_pairs_follow_the_truths_and_say_what_was_left_out() -> None:
    predictions = paths("pred", "b.png", "a.png", "stray.png")
    truths = paths("truth", "a.png", "b.png", "c.png")
    pairing = pair_by_stem(predictions, truths, Path("pred"), partial=True)
    assert pairing.pairs == [
        MaskPair(Path("pred/a.png"), Path("truth/a.png")),
        MaskPair(Path("pred/b.png"), Path("truth/b.png")),
    ]
    assert pairing.left_out == {"predictions_without_truth": ["stray.png"], "truths_without_prediction": ["c.png"]}


def test_anything_left_out_is_refused_unless_partial() -> None:
    with pytest.raises(PixelwiseError, match=r"pred: no prediction for 1 of 2 truth masks \(b.png\)"):
        pair_by_stem(paths("pred", "a.png"), paths("truth", "a.png", "b.png"), Path("pred"))
    with pytest.raises(PixelwiseError, match=r"pred: 1 of 2 predictions have no truth mask \(z.png\)"):
        pair_by_stem(paths("pred", "a.png", "z.png"), paths("truth", "a.png"), Path("pred"))


def test_predictions_of_another_split_are_set_aside_with_a_note() -> None:
    with pytest.warns(UserWarning, match="1 predictions in pred are of another split and not scored"):
        pairing = pair_by_stem(
            paths("pred", "a.png", "v.png"), paths("truth", "a.png"), Path("pred"), other_splits={"a", "v"}
        )
    assert [pair.prediction.name for pair in pairing.pairs] == ["a.png"]
    assert pairing.left_out == {"predictions_without_truth": [], "truths_without_prediction": []}


def test_masks_alone_with_their_classes_beside_them(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from pixelwise.data.classes import ClassSpec

    (tmp_path / "masks").mkdir()
    for stem in ("x", "y"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / f"{stem}.png")
    ClassSpec.default(2).save(tmp_path / "classes.yaml")
    truths = truth_masks(tmp_path, split=None, seed=0, classes_file=None)
    assert [mask.name for mask in truths.masks] == ["x.png", "y.png"]
    assert truths.classes == ClassSpec.default(2)
    assert truths.every_stem == {"x", "y"}
