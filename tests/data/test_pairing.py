"""Pairing predictions with truths by name: the pairs in the truths' order, what was left out, refusals, and
images in sub-folders kept apart from their namesakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.pairing import MaskPair, Truths, pair_by_name, truth_masks
from pixelwise.errors import PixelwiseError


def paths(folder: str, *names: str) -> list[Path]:
    return [Path(folder) / name for name in names]


def truths(*names: str, every: set[str] | None = None) -> Truths:
    masks = paths("truth", *names)
    named = [name.rpartition(".")[0] for name in names]
    return Truths(masks, named, None, frozenset(every if every is not None else named))


def test_pairs_follow_the_truths_and_say_what_was_left_out() -> None:
    predictions = paths("pred", "b.png", "a.png", "stray.png")
    pairing = pair_by_name(predictions, Path("pred"), truths("a.png", "b.png", "c.png"), partial=True)
    assert pairing.pairs == [
        MaskPair(Path("pred/a.png"), Path("truth/a.png")),
        MaskPair(Path("pred/b.png"), Path("truth/b.png")),
    ]
    assert pairing.left_out == {"predictions_without_truth": ["stray.png"], "truths_without_prediction": ["c.png"]}


def test_anything_left_out_is_refused_unless_partial() -> None:
    with pytest.raises(PixelwiseError, match=r"pred: no prediction for 1 of 2 truth masks \(b.png\)"):
        pair_by_name(paths("pred", "a.png"), Path("pred"), truths("a.png", "b.png"))
    with pytest.raises(PixelwiseError, match=r"pred: 1 of 2 predictions have no truth mask \(z.png\)"):
        pair_by_name(paths("pred", "a.png", "z.png"), Path("pred"), truths("a.png"))


def test_predictions_of_another_split_are_set_aside_with_a_note() -> None:
    with pytest.warns(UserWarning, match="1 predictions in pred are of another split and not scored"):
        pairing = pair_by_name(paths("pred", "a.png", "v.png"), Path("pred"), truths("a.png", every={"a", "v"}))
    assert [pair.prediction.name for pair in pairing.pairs] == ["a.png"]
    assert pairing.left_out == {"predictions_without_truth": [], "truths_without_prediction": []}


def test_namesakes_in_sub_folders_are_two_images(tmp_path: Path) -> None:
    for folder in (tmp_path / "truth" / "masks", tmp_path / "truth" / "masks" / "batch2", tmp_path / "pred" / "batch2"):
        folder.mkdir(parents=True)
    for value, folder in ((0, tmp_path / "truth" / "masks"), (1, tmp_path / "truth" / "masks" / "batch2")):
        Image.fromarray(np.full((4, 4), value, np.uint8)).save(folder / "a.png")
    Image.fromarray(np.full((4, 4), 1, np.uint8)).save(tmp_path / "pred" / "batch2" / "a.png")
    found = truth_masks(tmp_path / "truth", split=None, seed=0, classes_file=None)
    assert found.names == ["a", "batch2/a"]
    pairing = pair_by_name([tmp_path / "pred" / "batch2" / "a.png"], tmp_path / "pred", found, partial=True)
    assert pairing.pairs == [
        MaskPair(tmp_path / "pred" / "batch2" / "a.png", tmp_path / "truth" / "masks" / "batch2" / "a.png")
    ]
    assert pairing.truths_without_prediction == ["a.png"]


def test_masks_alone_with_their_classes_beside_them(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    for stem in ("x", "y"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / f"{stem}.png")
    ClassSpec.default(2).save(tmp_path / "classes.yaml")
    found = truth_masks(tmp_path, split=None, seed=0, classes_file=None)
    assert [mask.name for mask in found.masks] == ["x.png", "y.png"]
    assert found.classes == ClassSpec.default(2)
    assert found.every_name == {"x", "y"}
