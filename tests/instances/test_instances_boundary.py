"""The boundary class: the ring in training masks, its class in the checkpoint, and back to objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.instances.boundary import (
    BOUNDARY_NAME,
    add_boundary,
    boundary_index,
    fold_boundary,
    with_boundary_class,
)
from pixelwise.instances.labels import instance_labels

CLASSES = ClassSpec(("background", "nucleus"), ((0, 0, 0), (0, 128, 0)))


def touching_squares() -> tuple[np.ndarray, np.ndarray]:
    """A mask with one blob that is two 8 x 8 objects side by side, and their labels."""
    objects = np.zeros((12, 20), np.int32)
    objects[2:10, 2:10] = 1
    objects[2:10, 10:18] = 2
    return (objects > 0).astype(np.uint8), objects


def test_the_ring_is_two_pixels_inside_each_object_and_parts_touching_ones() -> None:
    mask, objects = touching_squares()
    ringed = add_boundary(mask, objects, boundary=2)
    assert ringed[6, 2:5].tolist() == [2, 2, 1]  # two pixels in from the background
    assert ringed[6, 7:13].tolist() == [1, 2, 2, 2, 2, 1]  # two pixels on each side of the shared edge
    assert (ringed[objects == 0] == 0).all()
    # the interiors, all that is left of the object class, are apart
    assert instance_labels((ringed == 1).astype(np.uint8), split=False, min_size=0).count == 2


def test_the_boundary_class_is_named_last_in_a_new_colour() -> None:
    classes = with_boundary_class(CLASSES)
    assert classes.names == ("background", "nucleus", BOUNDARY_NAME)
    assert classes.colors[2] not in CLASSES.colors  # the VOC colour of index 2 is taken here: another one
    assert boundary_index(classes) == 2 and boundary_index(CLASSES) is None
    with pytest.raises(PixelwiseError, match="already have a class named"):
        with_boundary_class(classes)


def test_predictions_with_the_boundary_class_become_objects_and_object_classes() -> None:
    mask, objects = touching_squares()
    classes = with_boundary_class(CLASSES)
    predicted = add_boundary(mask, objects, boundary=2)
    found = instance_labels(predicted, classes, split=False, min_size=0)
    assert found.count == 2 and found.classes.tolist() == [1, 1]
    # the boundary pixels went back to their objects: the objects are whole again
    assert (found.labels > 0).sum() == (objects > 0).sum()
    assert set(np.unique(found.labels[objects == 1])) == {1}
    # a piece of boundary that borders no object is no object
    stray = predicted.copy()
    stray[11, 0:2] = 2
    assert instance_labels(stray, classes, split=False, min_size=0).labels[11, 0:2].max() == 0
    folded, folded_classes = fold_boundary(predicted, classes)
    assert folded_classes == CLASSES
    assert np.array_equal(folded, mask)
    assert fold_boundary(mask, CLASSES)[0] is mask


def write_folder(root: Path, *, with_instances: bool) -> None:
    mask, objects = touching_squares()
    for split in ("train", "val"):
        for folder in ("images", "masks", "instances"):
            (root / split / folder).mkdir(parents=True)
        for index in range(2):
            Image.fromarray((mask * 200).astype(np.uint8)).save(root / split / "images" / f"i{index}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"i{index}.png")
            if with_instances:
                tifffile.imwrite(root / split / "instances" / f"i{index}.tif", objects)
    CLASSES.save(root / "classes.yaml")


@pytest.mark.parametrize("with_instances", [True, False])
def test_training_masks_get_the_ring_from_the_label_images_beside_them(tmp_path: Path, with_instances: bool) -> None:
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.data import boundary_sources

    write_folder(tmp_path, with_instances=with_instances)
    train = SegmentationFolder(tmp_path, "train")
    ringed, _ = boundary_sources(TrainConfig(boundary_class=True), train, None)
    assert ringed.classes.names[-1] == BOUNDARY_NAME and len(ringed) == 2
    mask = ringed[0].mask
    # with the label images the ring parts the two objects; without them the blob is one object
    assert (mask[6, 9] == 2) == with_instances
    assert mask[6, 2] == 2 and ringed[0].stem == "i0"
    assert boundary_sources(TrainConfig(), train, None)[0] is train


def test_a_run_with_the_boundary_class_names_it_in_the_checkpoint(tmp_path: Path) -> None:
    from pixelwise.checkpoint import load_checkpoint
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.loop import fit

    write_folder(tmp_path / "data", with_instances=True)
    config = TrainConfig(
        boundary_class=True, epochs=1, batch_size=2, crop_size=16, model_options={"width": 4, "depth": 2}
    )
    train = SegmentationFolder(tmp_path / "data", "train")
    val = SegmentationFolder(tmp_path / "data", "val")
    result = fit(config, train, val, out_dir=tmp_path / "run", progress=False)
    classes = load_checkpoint(result.best_checkpoint).classes
    assert classes.names == ("background", "nucleus", BOUNDARY_NAME)
    assert "object boundary" in result.history[0]["val_iou"]


def test_probabilities_fold_the_boundary_into_the_object_classes() -> None:
    from pixelwise.instances.boundary import fold_boundary_probabilities, without_boundary

    classes = with_boundary_class(ClassSpec(("background", "cell", "nucleus"), ((0, 0, 0), (255, 0, 0), (0, 0, 255))))
    assert without_boundary(classes).names == ("background", "cell", "nucleus") and without_boundary(CLASSES) is CLASSES
    probabilities = np.array([[0.1, 0.5], [0.2, 0.0], [0.6, 0.0], [0.1, 0.5]], np.float32)[:, None, :]  # (4, 1, 2)
    folded = fold_boundary_probabilities(probabilities, classes)
    assert folded.shape == (3, 1, 2)
    # the boundary's 0.1 split 1:3 between cell and nucleus; where neither has any, evenly
    np.testing.assert_allclose(folded[:, 0, 0], [0.1, 0.225, 0.675])
    np.testing.assert_allclose(folded[:, 0, 1], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(folded.sum(axis=0), 1.0)
    two = fold_boundary_probabilities(
        np.array([[0.2], [0.3], [0.5]], np.float32)[:, None], with_boundary_class(CLASSES)
    )
    np.testing.assert_allclose(two[:, 0, 0], [0.2, 0.8])  # a two-class task: all of it to the one object class
