"""Backends: any callable runs the network; TorchBackend is the PyTorch one; load_backend opens a model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.inference.backends import Backend, TorchBackend, load_backend
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.models.registry import create_model

SPEC = InferenceSpec(model="test", classes=ClassSpec.default(2), mean=(0.5,), std=(0.25,), in_channels=1, tile_size=16)


def test_torch_backend_is_the_module_on_numpy_batches() -> None:
    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    backend = TorchBackend(model)
    assert isinstance(backend, Backend)
    batch = np.random.default_rng(0).random((2, 1, 12, 20), dtype=np.float32)
    logits = backend(batch)
    assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (2, 2, 12, 20)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def test_a_torch_module_that_returns_no_tensor_is_refused() -> None:
    class Dict(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": images}

    with pytest.raises(TypeError, match="the model returned dict, expected a logits tensor"):
        TorchBackend(Dict())(np.zeros((1, 1, 4, 4), np.float32))


def test_a_plain_function_is_a_backend_and_a_bare_module_is_refused_with_the_fix() -> None:
    def negate(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([-batch, batch], axis=1)

    # class 1 where the pixel is brighter than the mean
    assert Predictor(negate, SPEC).predict_labels(np.array([[0.2, 0.8, 0.3]], np.float32)).tolist() == [[0, 1, 0]]
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    with pytest.raises(PixelwiseError, match=r"wrap it: Predictor\(TorchBackend\(model\), spec\)"):
        Predictor(model, SPEC)


def test_load_backend_reads_a_checkpoint_into_a_torch_backend_and_its_spec(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2).eval()
    save_checkpoint(
        tmp_path / "best.pt",
        Checkpoint(
            model="unet-small",
            model_options={"width": 4, "depth": 2},
            state_dict=model.state_dict(),
            classes=ClassSpec.default(2),
            normalization=Normalization((0.0,), (1.0,)),
            in_channels=1,
            tile_size=16,
            stride=model.stride,
        ),
    )
    backend, spec = load_backend(tmp_path)
    assert isinstance(backend, TorchBackend)
    assert spec == InferenceSpec(
        model="unet-small", classes=ClassSpec.default(2), mean=(0.0,), std=(1.0,), in_channels=1, tile_size=16, stride=4
    )
    batch = np.random.default_rng(1).random((1, 1, 8, 8), dtype=np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(backend(batch), model(torch.from_numpy(batch)).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(PixelwiseError, match=r"nothing\.pt: no such checkpoint"):
        load_backend(tmp_path / "nothing.pt")
