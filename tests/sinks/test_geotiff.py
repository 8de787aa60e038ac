"""The GeoTIFF mask sink: the input's CRS, transform and size, streamed band by band, whole or absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask
from pixelwise.data.rasters import open_raster
from pixelwise.data.sources import ImageInfo
from pixelwise.sinks import SINKS, PredictionBand, make_sink


def test_a_mask_lies_where_its_image_lies(tmp_path: Path, geodata: Any) -> None:
    import rasterio

    image = geodata.write_raster(tmp_path / "scene.tif", np.ones((3, 300, 270), np.uint16), nodata=0)
    classes = ClassSpec.default(3)
    sink = make_sink("geotiff")
    assert "geotiff" in SINKS and sink.path(tmp_path / "out", "a/scene") == tmp_path / "out" / "a" / "scene.tif"
    truth = np.random.default_rng(0).integers(0, 3, (300, 270)).astype(np.uint8)
    truth[:5] = classes.ignore_index  # no data
    with open_raster(image) as source:
        writer = sink.open(tmp_path / "out" / "scene.tif", source.info, classes)
    for top in range(0, 300, 77):  # bands that do not line up with the 256-pixel tiles
        writer.write(PredictionBand(top, truth[top : top + 77]))
    assert not (tmp_path / "out" / "scene.tif").exists()  # not before the commit
    writer.commit()
    with rasterio.open(image) as original, rasterio.open(tmp_path / "out" / "scene.tif") as mask:
        assert mask.crs == original.crs and mask.transform == original.transform
        assert (mask.width, mask.height, mask.count, mask.dtypes[0]) == (270, 300, 1, "uint8")
        assert mask.nodata == classes.ignore_index and mask.block_shapes[0] == (256, 256)
        assert mask.colormap(1)[1][:3] == tuple(classes.palette()[1])
        np.testing.assert_array_equal(mask.read(1), truth)
    # evaluate reads it as any index mask
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / "scene.tif", classes), truth)


def test_a_discarded_mask_leaves_nothing_and_a_plain_image_gets_a_plain_tiff(tmp_path: Path) -> None:
    pytest.importorskip("rasterio")
    classes = ClassSpec.default(2)
    sink = make_sink("geotiff")
    writer = sink.open(tmp_path / "gone.tif", ImageInfo(10, 12, 3, "uint8"), classes)
    writer.write(PredictionBand(0, np.zeros((10, 12), np.uint8)))
    writer.discard()
    assert list(tmp_path.iterdir()) == []
    writer = sink.open(tmp_path / "plain.tif", ImageInfo(10, 12, 3, "uint8"), classes)
    writer.write(PredictionBand(0, np.ones((10, 12), np.uint8)))
    writer.commit()
    assert read_mask(tmp_path / "plain.tif", classes).sum() == 120
