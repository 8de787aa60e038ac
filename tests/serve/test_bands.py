"""The service takes multi-band TIFF uploads for a model of bands, read by the model's band rule."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelwise.data.bands import BandRanges, InputBands
from pixelwise.data.classes import ClassSpec
from pixelwise.data.rasters import read_bands


def test_a_multi_band_tiff_is_segmented_like_the_file(tmp_path: Path, geodata: Any) -> None:
    import torch
    from fastapi.testclient import TestClient

    from pixelwise.inference import InferenceSpec, Predictor, TorchBackend
    from pixelwise.models.registry import create_model
    from pixelwise.serve import create_app

    torch.manual_seed(0)
    rule = InputBands(("B8", "B4", "B3", "B2"), 0.0, BandRanges((0.0,) * 4, (5000.0,) * 4))
    model = create_model("unet-small", num_classes=2, in_channels=4, width=4, depth=2).eval()
    spec = InferenceSpec(
        model="unet-small",
        classes=ClassSpec.default(2),
        mean=[0.5] * 4,
        std=[0.25] * 4,
        in_channels=4,
        tile_size=32,
        stride=4,
        input_bands=rule,
    )
    predictor = Predictor(TorchBackend(model), spec)
    bands = np.random.default_rng(0).integers(1, 5000, (6, 40, 50)).astype(np.uint16)
    scene = geodata.write_raster(tmp_path / "scene.tif", bands, names=geodata.NAMES, nodata=0)
    expected = predictor.predict_labels(read_bands(scene, input_bands=rule)[0])
    with torch.no_grad(), TestClient(create_app(predictor)) as client:
        answer = client.post("/predict", files={"image": ("scene.tif", scene.read_bytes(), "image/tiff")})
        assert answer.status_code == 200, answer.text
        with Image.open(io.BytesIO(answer.content)) as mask:
            np.testing.assert_array_equal(np.asarray(mask), expected)
        assert client.get("/model").json()["in_channels"] == 4
        # a file without the model's bands: 422, an image but not for this model, naming the band it lacks
        small = geodata.write_raster(tmp_path / "small.tif", bands[:3], names=geodata.NAMES[:3])
        refused = client.post("/predict", files={"image": ("small.tif", small.read_bytes(), "image/tiff")})
    assert refused.status_code == 422 and "small.tif: no band named 'B8'" in refused.json()["error"]
