"""Registry, regions -> classes (fitted honestly, or the oracle), and saving a fitted segmenter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelwise.classical import (
    METHODS,
    ClassicalSegmenter,
    FittedLabeler,
    list_methods,
    method_options,
    oracle_labels,
    oracle_name,
    segment,
)
from pixelwise.data.classes import ClassSpec
from pixelwise.data.folder import SegmentationFolder
from pixelwise.data.io import write_mask
from pixelwise.errors import PixelwiseError


def blobs(seed: int, size: int = 24, *, channels: int = 1, inverted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Bright squares (class 1) on a dark noisy background (class 0); ``inverted`` swaps the class names."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(3):
        row, column = rng.integers(0, size - 6, 2)
        mask[row : row + 6, column : column + 6] = 1
    image = np.where(mask[:, :, None] == 1, 0.75, 0.25) + rng.normal(0, 0.03, (size, size, channels))
    truth = 1 - mask if inverted else mask
    return np.clip(image, 0, 1).astype(np.float32), truth


# --- registry --------------------------------------------------------------------------------------------


def test_registry_lists_every_method_in_order() -> None:
    assert (
        list_methods()
        == list(METHODS)
        == [
            "otsu",
            "multi_otsu",
            "local_threshold",
            "sobel_watershed",
            "canny_regions",
            "region_grow",
            "kmeans",
            "slic",
            "felzenszwalb",
        ]
    )
    assert method_options("multi_otsu") == {"classes": 3, "bins": 256}


@pytest.mark.parametrize("name", list_methods())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_method_partitions_grey_and_colour_images(name: str, channels: int) -> None:
    image, _ = blobs(0, channels=channels)
    regions = segment(name, image)
    assert regions.shape == image.shape[:2] and regions.dtype == np.int32
    assert len(np.unique(regions)) >= 2  # the squares and the background are told apart
    assert (segment(name, image[:, :, 0]) == segment(name, image[:, :, :1])).all() or channels == 3


def test_unknown_method_lists_the_names() -> None:
    with pytest.raises(PixelwiseError, match="unknown classical method 'watershed'; choose from otsu, multi_otsu"):
        segment("watershed", np.zeros((3, 3)))


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(PixelwiseError, match=r"otsu has no option 'classes'; its options are bins$"):
        segment("otsu", np.zeros((3, 3)), classes=3)
    with pytest.raises(PixelwiseError, match="segments, compactness, sigma"):
        ClassicalSegmenter("slic", {"n_segments": 10})


# --- oracle ----------------------------------------------------------------------------------------------


def test_oracle_takes_the_majority_and_skips_ignored_pixels() -> None:
    regions = np.array([[7, 7, 7, 900], [7, 3, 3, 900]])
    truth = np.array([[2, 2, 0, 255], [0, 1, 255, 255]])
    # region 7: votes 2, 2, 0, 0 -> tie, lower class 0; region 3: only class 1 votes; region 900: none
    assert oracle_labels(regions, truth).tolist() == [[0, 0, 0, 255], [0, 1, 1, 255]]


# --- fitted labeler --------------------------------------------------------------------------------------


def test_index_labeler_learns_which_bin_is_which_class_and_falls_back_to_the_prior() -> None:
    regions = np.array([[0, 0, 0, 1], [0, 0, 1, 1]])
    truth = np.array([[1, 1, 1, 0], [1, 1, 0, 2]])  # bin 0 is class 1, bin 1 is class 0
    labeler = FittedLabeler(mode="index").fit([(regions, np.zeros((2, 4)), truth)], num_classes=3)
    new_regions = np.array([[1, 0, 5]])  # bin 5 was never seen: most frequent training class (1)
    assert labeler.predict(new_regions, np.zeros((1, 3))).tolist() == [[0, 1, 1]]


def test_colour_labeler_uses_region_means_and_fills_unseen_colours_from_the_nearest() -> None:
    regions = np.array([[1, 1, 2, 2]])
    image = np.array([[0.1, 0.2, 0.55, 0.65]])
    truth = np.array([[0, 0, 1, 1]])
    labeler = FittedLabeler(mode="colour").fit([(regions, image, truth)], num_classes=2)
    assert labeler.bins == 64 and len(labeler.to_dict()["table"]) == 64
    # region means 0.05 and 0.95: never seen, nearest seen cells are 0.15 (class 0) and 0.6 (class 1)
    test_regions = np.array([[4, 4, 9, 9]])
    test_image = np.array([[0.0, 0.1, 0.9, 1.0]])
    assert labeler.predict(test_regions, test_image).tolist() == [[0, 0, 1, 1]]


def test_colour_smoothing_lets_large_regions_outvote_a_few_small_ones_nearby() -> None:
    # training: a 1000-pixel background region of mean 0.12 and a 10-pixel nucleus region of mean 0.15
    regions = np.array([[1] * 1000 + [2] * 10])
    image = np.array([[0.12] * 1000 + [0.15] * 10])
    truth = np.array([[0] * 1000 + [1] * 10])
    test_regions, test_image = np.array([[5, 5]]), np.array([[0.15, 0.15]])
    smoothed = FittedLabeler(mode="colour").fit([(regions, image, truth)], num_classes=2)
    assert smoothed.predict(test_regions, test_image).tolist() == [[0, 0]]
    raw = FittedLabeler(mode="colour", smoothing=0).fit([(regions, image, truth)], num_classes=2)
    assert raw.predict(test_regions, test_image).tolist() == [[1, 1]]
    # far from the background, the small region's evidence stands
    image = np.array([[0.12] * 1000 + [0.5] * 10])
    far = FittedLabeler(mode="colour").fit([(regions, image, truth)], num_classes=2)
    assert far.predict(np.array([[3, 4]]), np.array([[0.5, 0.12]])).tolist() == [[1, 0]]


def test_labeler_json_round_trip_predicts_the_same() -> None:
    image, truth = blobs(1, channels=3)
    regions = segment("slic", image, segments=30)
    labeler = FittedLabeler().fit([(regions, image, truth)], num_classes=2)
    assert labeler.bins == 16 and len(labeler.to_dict()["table"]) == 16**3
    again = FittedLabeler.from_dict(json.loads(json.dumps(labeler.to_dict())))
    test_image, _ = blobs(2, channels=3)
    test_regions = segment("slic", test_image, segments=30)
    assert (again.predict(test_regions, test_image) == labeler.predict(test_regions, test_image)).all()
    with pytest.raises(PixelwiseError, match="damaged"):
        FittedLabeler.from_dict({"mode": "colour"})


def test_fitted_segmenter_never_reads_the_test_truth() -> None:
    # trained where bright squares are called background: an honest labeler carries that naming to the
    # test image (and so scores badly), while the oracle, reading the test truth, gets it right
    train = [blobs(seed, inverted=True) for seed in range(3)]
    image, truth = blobs(10)
    fitted = ClassicalSegmenter("otsu").fit(train)
    prediction = fitted.predict(image)
    assert (prediction == 1 - truth).mean() > 0.95
    assert (fitted.predict(image, truth=truth) == prediction).all()  # truth given, and ignored
    oracle = ClassicalSegmenter("otsu", labeler="oracle")
    assert (oracle.predict(image, truth=truth) == truth).mean() > 0.95
    assert oracle.name == "otsu-oracle" == oracle_name("otsu") and fitted.name == "otsu"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("otsu", {}),
        ("kmeans", {}),
        ("slic", {}),
        ("region_grow", {}),
        # the default marker spacing (10 px) suits 512² images, not 6 px squares on 24²
        ("sobel_watershed", {"marker_spacing": 3}),
    ],
)
def test_fitted_on_some_images_segments_others(name: str, options: dict) -> None:  # type: ignore[type-arg]
    segmenter = ClassicalSegmenter(name, options).fit([blobs(seed) for seed in range(3)])
    for seed in (20, 21):
        image, truth = blobs(seed)
        assert (segmenter.predict(image) == truth).mean() > 0.9, name


def test_oracle_needs_the_truth_and_fitted_needs_fit() -> None:
    image, _ = blobs(0)
    with pytest.raises(PixelwiseError, match="needs the true mask"):
        ClassicalSegmenter("otsu", labeler="oracle").predict(image)
    with pytest.raises(PixelwiseError, match="not fitted"):
        ClassicalSegmenter("otsu").predict(image)
    with pytest.raises(PixelwiseError, match="no training image with a mask"):
        ClassicalSegmenter("otsu").fit([(image, None)])


def make_dataset(root: Path, count: int = 6) -> Path:
    classes = ClassSpec(("background", "square"), ((0, 0, 0), (255, 0, 0)))
    (root / "images").mkdir(parents=True)
    classes.save(root / "classes.yaml")
    for index in range(count):
        image, truth = blobs(30 + index)
        Image.fromarray((image[:, :, 0] * 255).round().astype(np.uint8)).save(root / "images" / f"img{index}.png")
        write_mask(root / "masks" / f"img{index}.png", truth, classes)
    return root


def test_segmenter_fits_a_dataset_folder_and_saves_for_reuse(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data")
    train, test = SegmentationFolder(root, "train"), SegmentationFolder(root, "test")
    assert not set(train.stems) & set(test.stems)
    segmenter = ClassicalSegmenter("multi_otsu", {"classes": 2}).fit(train)
    assert segmenter.classes is not None and segmenter.classes.names == ("background", "square")
    segmenter.save(tmp_path / "fit.json")
    loaded = ClassicalSegmenter.load(tmp_path / "fit.json")
    assert loaded.method == "multi_otsu" and loaded.options == {"classes": 2}
    for sample in test:
        assert (loaded.predict(sample.image) == segmenter.predict(sample.image)).all()
        assert (loaded.predict(sample.image) == sample.mask).mean() > 0.9
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PixelwiseError, match="not a fitted classical segmenter"):
        ClassicalSegmenter.load(tmp_path / "bad.json")


@pytest.mark.parametrize("key", ["method", "classes", "labeler", "labeler.table", "labeler.mode"])
def test_a_saved_segmenter_missing_a_key_is_one_line_naming_file_and_key(tmp_path: Path, key: str) -> None:
    segmenter = ClassicalSegmenter("otsu").fit([blobs(seed) for seed in range(2)])
    saved = segmenter.to_dict()
    if "." in key:
        part, key = key.split(".")
        del saved[part][key]
    else:
        del saved[key]
    file = tmp_path / "fit.json"
    file.write_text(json.dumps(saved))
    with pytest.raises(PixelwiseError) as raised:
        ClassicalSegmenter.load(file)
    message = str(raised.value)
    assert message.startswith(f"{file}: ") and repr(key) in message and "\n" not in message


def test_a_saved_segmenter_of_an_unknown_method_names_the_file(tmp_path: Path) -> None:
    saved = ClassicalSegmenter("otsu").fit([blobs(0)]).to_dict()
    saved["method"] = "watershed"
    (tmp_path / "fit.json").write_text(json.dumps(saved))
    with pytest.raises(PixelwiseError, match=r"fit\.json: unknown classical method 'watershed'"):
        ClassicalSegmenter.load(tmp_path / "fit.json")
