"""The tiled predictor: tiles land where they belong, blending is exact, memory stays per tile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pixelwise.data.channels import LUMINANCE
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.inference.backends import TorchBackend
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.models.registry import create_model


class PointwiseBackend:
    """Logit k of a pixel = (k + 1) · (first standardised channel): position-free, so blending is exact.

    Records the shape of every batch it sees.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        factors = np.arange(1, self.num_classes + 1, dtype=np.float32)[None, :, None, None]
        return batch[:, :1] * factors


def spec(classes: ClassSpec, mean: list[float], std: list[float], **fields: Any) -> InferenceSpec:
    return InferenceSpec(model="test", classes=classes, mean=tuple(mean), std=tuple(std), **fields)


def pointwise_predictor(**options: Any) -> tuple[Predictor, PointwiseBackend]:
    backend = PointwiseBackend(3)
    fields = {"mean": [0.25], "std": [0.5], "in_channels": 1}
    fields.update({key: options.pop(key) for key in list(options) if key in fields})
    settings = {"tile_size": 32, "batch_size": 4, **options}
    return Predictor(backend, spec(ClassSpec.default(3), **fields), **settings), backend


def test_tiles_land_where_they_belong_and_blend_exactly() -> None:
    predictor, backend = pointwise_predictor()
    image = np.random.default_rng(0).random((70, 91), dtype=np.float32)
    logits = predictor.predict_logits(image)
    standardised = (image - 0.25) / 0.5
    expected = np.stack([standardised * factor for factor in (1, 2, 3)])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    # 70 rows in tiles of 32 at overlap 0.5: ceil(38 / 16) + 1 = 4 rows; 91 columns: ceil(59 / 16) + 1 = 5
    assert sum(shape[0] for shape in backend.shapes) == 4 * 5
    # the network never sees more than one batch of tiles: never the whole image
    assert all(shape[0] <= 4 and shape[1:] == (1, 32, 32) for shape in backend.shapes)


def test_probabilities_are_the_softmax_of_the_blended_logits() -> None:
    predictor, _ = pointwise_predictor()
    image = np.random.default_rng(1).random((40, 33, 1), dtype=np.float32)
    probabilities = predictor.predict(image)
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (3, 40, 33)
    logits = torch.from_numpy(predictor.predict_logits(image))
    np.testing.assert_allclose(probabilities, logits.softmax(dim=0).numpy(), rtol=1e-5, atol=1e-6)
    labels = predictor.predict_labels(image)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, probabilities.argmax(axis=0))


def test_an_image_smaller_than_the_tile_is_one_tile_of_its_own_size() -> None:
    predictor, backend = pointwise_predictor(tile_size=64)
    assert predictor.predict(np.full((20, 25), 0.5, np.float32)).shape == (3, 20, 25)
    assert backend.shapes == [(1, 1, 20, 25)]
    # a one-pixel image works too
    assert predictor.predict(np.zeros((1, 1), np.float32)).shape == (3, 1, 1)


def test_a_single_tile_is_exactly_the_whole_image_forward_pass() -> None:
    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=3, width=4, depth=2).eval()
    image = np.random.default_rng(2).random((24, 36, 3), dtype=np.float32)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    predictor = Predictor(TorchBackend(model), spec(ClassSpec.default(2), mean, std, in_channels=3, tile_size=64))
    standardised = (image - np.float32(mean)) / np.float32(std)
    with torch.inference_mode():
        expected = model(torch.from_numpy(standardised.transpose(2, 0, 1).copy())[None])[0].numpy()
    np.testing.assert_allclose(predictor.predict_logits(image), expected, rtol=1e-4, atol=1e-5)


def test_flip_tta_makes_the_prediction_flip_equivariant() -> None:
    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    image = np.random.default_rng(3).random((32, 48), dtype=np.float32)
    description = spec(ClassSpec.default(2), [0.5], [0.3], in_channels=1, tile_size=64)
    plain = Predictor(TorchBackend(model), description)
    averaged = Predictor(TorchBackend(model), description, tta=True)
    flipped = np.ascontiguousarray(image[:, ::-1])
    # without TTA a random network is not symmetric: the test below can fail
    assert not np.allclose(plain.predict_logits(flipped), plain.predict_logits(image)[:, :, ::-1], atol=1e-4)
    np.testing.assert_allclose(
        averaged.predict_logits(flipped), averaged.predict_logits(image)[:, :, ::-1], rtol=1e-4, atol=1e-5
    )


def test_uint8_images_are_scaled_like_floats() -> None:
    predictor, _ = pointwise_predictor()
    image = np.arange(40 * 50, dtype=np.uint32).reshape(40, 50).astype(np.uint8)
    np.testing.assert_allclose(
        predictor.predict_logits(image), predictor.predict_logits(image.astype(np.float32) / 255), rtol=1e-6, atol=1e-6
    )
    with pytest.raises(PixelwiseError, match="expected a float image in \\[0, 1\\] \\(or uint8\\), got int32"):
        predictor.predict(np.zeros((4, 4), np.int32))


def test_channel_mismatches_are_converted_with_a_notice_or_refused() -> None:
    grey, _ = pointwise_predictor(mean=[0.0], std=[1.0])
    rgb = np.random.default_rng(4).random((30, 30, 3), dtype=np.float32)
    with pytest.warns(UserWarning, match="luminance"):
        logits = grey.predict_logits(rgb)
    np.testing.assert_allclose(logits[0], rgb @ np.float32(LUMINANCE), rtol=1e-5, atol=1e-6)

    colour, backend = pointwise_predictor(mean=[0.0] * 3, std=[1.0] * 3, in_channels=3)
    with pytest.warns(UserWarning, match="repeating the grey channel"):
        colour.predict(rgb[:, :, :1])
    assert backend.shapes[-1][1] == 3
    with pytest.raises(PixelwiseError, match="the image has 4 channels but the model was trained on 3"):
        colour.predict(np.zeros((8, 8, 4), np.float32))


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(PixelwiseError, match="overlap must be at least 0 and below 1"):
        pointwise_predictor(overlap=1.0)
    with pytest.raises(PixelwiseError, match="tile size must be a positive integer"):
        pointwise_predictor(tile_size=0)
    with pytest.raises(PixelwiseError, match="1 means and 1 stds for 3 input channels"):
        pointwise_predictor(in_channels=3)


def _write_checkpoint(path: Path) -> torch.nn.Module:
    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint

    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=3, in_channels=1, width=4, depth=2)
    options = {key: value for key, value in model.spec.items() if key not in ("name", "num_classes", "in_channels")}
    save_checkpoint(
        path,
        Checkpoint(
            model="unet-small",
            model_options=options,
            state_dict=model.state_dict(),
            classes=ClassSpec.default(3, names=["background", "cell", "edge"]),
            normalization=Normalization((0.5,), (0.25,)),
            in_channels=1,
            tile_size=32,
        ),
    )
    return model.eval()


def test_load_rebuilds_the_trained_predictor(tmp_path: Path) -> None:
    model = _write_checkpoint(tmp_path / "best.pt")
    predictor = Predictor.load(tmp_path, batch_size=2)
    assert predictor.classes.names == ("background", "cell", "edge")
    assert predictor.tile_size == 32
    assert predictor.in_channels == 1
    image = np.random.default_rng(5).random((20, 28), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy((image - 0.5) / 0.25)[None, None])[0].numpy()
    np.testing.assert_allclose(predictor.predict_logits(image), expected, rtol=1e-4, atol=1e-5)
    assert Predictor.load(tmp_path / "best.pt", tile_size=64).tile_size == 64


def test_corrupt_or_foreign_checkpoints_name_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(PixelwiseError, match=r"corrupt\.pt"):
        Predictor.load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(PixelwiseError, match=r"foreign\.pt: not a pixelwise checkpoint"):
        Predictor.load(foreign)
    with pytest.raises(PixelwiseError, match=r"missing\.pt"):
        Predictor.load(tmp_path / "missing.pt")
