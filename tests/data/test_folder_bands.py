"""A dataset folder of multispectral, georeferenced images: bands, no data, the training set's band ranges,
and the refusals that come before any work."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelwise.data.bands import BandRanges, InputBands, to_unit_range
from pixelwise.data.folder import SegmentationFolder
from pixelwise.data.raster_files import raster_info
from pixelwise.errors import InputError, PixelwiseError


@pytest.fixture
def scenes(tmp_path: Path, geodata: Any) -> Path:
    return geodata.write_signal_dataset(tmp_path / "scenes", count=8)


def test_a_6_band_folder_reads_every_band_with_no_data_ignored(scenes: Path) -> None:
    train = SegmentationFolder(scenes, "train")
    assert train.in_channels == 6
    image, mask, _, _ = train[0]
    assert image.shape == (40, 48, 6) and image.dtype == np.float32 and image.min() >= 0 and image.max() <= 1
    # the no-data rows: pixels 0, labels ignored
    assert (mask[:4] == train.classes.ignore_index).all() and (image[:4] == 0).all()
    assert (mask[4:] != train.classes.ignore_index).all()
    rule = train.input_bands
    assert rule is not None and rule.selection == () and rule.nodata is None and rule.ranges is not None
    assert len(rule.ranges.low) == 6 and rule.ranges.low[0] >= 300  # no data (0) is not part of the range
    assert train.missing_pixels(0) is not None


def test_every_split_scales_by_the_training_images_ranges(scenes: Path) -> None:
    train, val, test = (SegmentationFolder(scenes, split) for split in ("train", "val", "test"))
    assert train.input_bands == val.input_bands == test.input_bands
    # a stored value means the same input in every image: the ranges, not each image's own stretch
    stored = raster_info(val.image_paths[0])
    assert stored.bands == 6
    image = val[0].image
    import rasterio

    with rasterio.open(val.image_paths[0]) as raster:
        values = np.moveaxis(raster.read(), 0, -1)
    assert train.input_bands is not None and train.input_bands.ranges is not None
    expected = to_unit_range(values, ranges=train.input_bands.ranges)
    np.testing.assert_array_equal(image[4:], expected[4:])


def test_bands_pick_and_order_by_number_or_name(scenes: Path) -> None:
    by_number = SegmentationFolder(scenes, "train", bands=(4, 1))
    by_name = SegmentationFolder(scenes, "train", bands=("B8", "B2"))
    assert by_number.in_channels == 2
    np.testing.assert_array_equal(by_number[0].image, by_name[0].image)
    every = SegmentationFolder(scenes, "train")
    band_4 = by_number[0].image[..., 0]
    # the same band, scaled by its own training range in both folders
    np.testing.assert_array_equal(band_4, every[0].image[..., 3])
    assert by_number.input_bands is not None and by_number.input_bands.selection == (4, 1)


def test_a_model_rule_is_used_as_given(scenes: Path) -> None:
    trained = SegmentationFolder(scenes, "train", bands=(4,)).input_bands
    assert trained is not None
    given = SegmentationFolder(scenes, "test", input_bands=trained)
    assert given.input_bands is trained and given.in_channels == 1


def test_nodata_given_by_the_user_wins_over_the_file(scenes: Path) -> None:
    folder = SegmentationFolder(scenes, "train", nodata=65535)
    _, mask, _, _ = folder[0]
    assert (mask != folder.classes.ignore_index).all()  # 0 is data now, 65535 occurs nowhere
    assert folder.input_bands is not None and folder.input_bands.nodata == 65535


def test_grey_and_rgb_folders_record_nothing_new(unseen_dataset: Path) -> None:
    folder = SegmentationFolder(unseen_dataset, "train")
    assert folder.input_bands is None and folder.in_channels == 1


def test_a_band_beyond_the_files_is_refused_before_any_work(scenes: Path) -> None:
    folder = SegmentationFolder(scenes, "train", bands=(7, 2))
    with pytest.raises(
        InputError, match=r"scene_\d\d\.tif: band 7 is beyond its 6 bands; give --bands between 1 and 6"
    ):
        folder.check()


def test_images_of_different_band_counts_are_refused(scenes: Path, geodata: Any) -> None:
    odd = scenes / "images" / "scene_03.tif"
    geodata.write_raster(odd, np.ones((4, 40, 48), np.uint16), nodata=0)
    folder = SegmentationFolder(scenes, "all")
    with pytest.raises(PixelwiseError, match=r"scene_03\.tif has 4 bands but .*scene_00\.tif has 6; give every image"):
        folder.check()
    with pytest.raises(PixelwiseError, match=r"scene_03\.tif has 4 bands but .*scene_00\.tif has 6"):
        folder[3]  # the training set's band ranges meet it first
    model_rule = InputBands((), None, BandRanges((0.0,) * 6, (5000.0,) * 6))  # a model's, of 6 bands
    given = SegmentationFolder(scenes, "all", input_bands=model_rule)
    with pytest.raises(InputError, match=r"scene_03\.tif: an image of 4 bands, but the model was trained on 6"):
        given[3]


def test_a_mask_placed_elsewhere_than_its_image_is_refused(scenes: Path, geodata: Any) -> None:
    mask = scenes / "masks" / "scene_02.png"
    labels = np.asarray(__import__("PIL.Image").Image.open(mask))[None].astype(np.uint8)
    mask.unlink()
    # the same size, one scene further east: the labels would land 1 km off
    geodata.write_raster(scenes / "masks" / "scene_02.tif", labels, affine=geodata.transform(3))
    with pytest.raises(PixelwiseError, match=r"mask .*scene_02\.tif lies elsewhere than its image .*scene_02\.tif"):
        SegmentationFolder(scenes, "all").check()
    geodata.write_raster(scenes / "masks" / "scene_02.tif", labels, affine=geodata.transform(2))
    SegmentationFolder(scenes, "all").check()  # in place: fine


def test_ranges_are_computed_once_per_folder_and_files(scenes: Path, tmp_path: Path) -> None:
    import pixelwise.data.folder_bands as folder_bands

    first = SegmentationFolder(scenes, "train").input_bands
    copy = shutil.copytree(scenes, tmp_path / "copy")
    assert SegmentationFolder(copy, "train").input_bands == first  # the same pixels, the same ranges
    assert len(folder_bands._ranges) >= 2
    assert isinstance(first, InputBands)
