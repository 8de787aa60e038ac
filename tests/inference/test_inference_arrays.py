"""Blending where the network runs: the torch path (image, tiles and canvas on the model's device) gives what
the numpy path gives; windows are padded to the stride outside the network; precision is honoured.

Device-sensitive: run with ``PIXELWISE_TEST_DEVICE=cuda`` on a machine with a GPU (default: the CPU).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.hardware import cpu_has_bf16
from pixelwise.inference.arrays import NumpyArrays, TorchArrays
from pixelwise.inference.backends import TorchBackend
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.spec import InferenceSpec
from pixelwise.models.network import SegmentationNetwork
from pixelwise.models.registry import create_model


def spec_for(model: SegmentationNetwork, *, tile_size: int = 32) -> InferenceSpec:
    channels = model.in_channels
    return InferenceSpec(
        model="test",
        classes=ClassSpec.default(model.num_classes),
        mean=(0.45,) * channels,
        std=(0.2,) * channels,
        in_channels=channels,
        tile_size=tile_size,
        stride=model.stride,
    )


def small_unet(channels: int = 3) -> SegmentationNetwork:
    torch.manual_seed(0)
    return create_model("unet-small", num_classes=3, in_channels=channels, width=4, depth=2)


@pytest.mark.filterwarnings("ignore:the image is grey")
@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((70, 45, 3), np.float32), ((37, 50, 3), np.uint8), ((5, 3, 3), np.float64), ((40, 36), np.uint8)],
)
def test_blending_on_the_device_gives_what_blending_on_the_host_gives(
    device: str, tta: bool, shape: tuple[int, ...], dtype: type
) -> None:
    model = small_unet()
    # a tile that is no multiple of the stride (4): every window is padded
    spec = spec_for(model, tile_size=30)
    generator = np.random.default_rng(0)
    image = generator.random(shape) if dtype != np.uint8 else generator.integers(0, 256, shape)
    image = image.astype(dtype)
    host = Predictor(TorchBackend(model, device=device, blend="host"), spec, batch_size=3, tta=tta)
    on_device = Predictor(TorchBackend(model, device=device, blend="device"), spec, batch_size=3, tta=tta)
    assert isinstance(host._arrays(1), NumpyArrays)
    assert isinstance(on_device._arrays(1), TorchArrays)
    expected = host.predict_logits(image)
    logits = on_device.predict_logits(image)
    assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (3, *shape[:2])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(on_device.predict(image), host.predict(image), rtol=1e-5, atol=1e-6)
    labels = on_device.predict_labels(image)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, host.predict_labels(image))


def test_windows_are_padded_to_the_stride_outside_the_network(device: str) -> None:
    """A network that refuses sizes off its stride (as an exported one does) takes any image, and the
    tiler's pad is the network's own: a single window equals the padding network on the whole image."""
    model = small_unet(1).to(device).eval()
    seen: list[tuple[int, ...]] = []

    def bare(batch: np.ndarray) -> np.ndarray:
        assert batch.shape[-2] % 4 == 0 and batch.shape[-1] % 4 == 0, batch.shape
        seen.append(batch.shape)
        with torch.no_grad():
            return model.network(torch.from_numpy(batch).to(device)).cpu().numpy()

    spec = spec_for(model, tile_size=64)
    for shape in [(37, 50), (1, 1), (2, 9), (64, 64)]:
        image = np.random.default_rng(1).random(shape, dtype=np.float32)
        standardised = torch.from_numpy((image - np.float32(0.45)) / np.float32(0.2))[None, None].to(device)
        with torch.no_grad():
            expected = model(standardised)[0].cpu().numpy()
        np.testing.assert_allclose(Predictor(bare, spec).predict_logits(image), expected, rtol=1e-4, atol=1e-5)
    # 37×50 -> 40×52, 1×1 -> 4×4 (replicated: too small to reflect), 2×9 -> 4×12, 64×64 as it is
    assert [shape[-2:] for shape in seen] == [(40, 52), (4, 4), (4, 12), (64, 64)]


def test_a_canvas_too_large_for_the_gpu_is_blended_on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = TorchBackend(small_unet())
    assert isinstance(backend.arrays(2**50), TorchArrays)  # on the CPU: the same memory either way
    backend.device = torch.device("cuda")  # the decision only, no GPU needed
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 3 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 1 * gib)
    # half of the free memory (10 GiB) and of what torch caches unused (2 GiB): 6 GiB for image and canvas
    assert isinstance(backend.arrays(6 * gib), TorchArrays)
    assert backend.arrays(6 * gib + 1) is None
    assert TorchBackend(small_unet(), blend="host").arrays(1) is None
    with pytest.raises(PixelwiseError, match="blend 'gpu': choose auto, device or host"):
        TorchBackend(small_unet(), blend="gpu")  # type: ignore[arg-type]


def test_half_precision_runs_in_half_and_mostly_agrees_with_fp32(device: str) -> None:
    """fp16 on CUDA, bf16 on a CPU with bf16 hardware: logits change a little, labels hardly at all."""
    half = "fp16" if device.startswith("cuda") else "bf16"
    if half == "bf16" and not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 hardware (avx512_bf16 / amx_bf16)")
    torch.manual_seed(0)
    # a trained-like network: clear margins between the classes, as a segmenter has away from boundaries
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 1))
    model = SegmentationNetwork(network, stride=1, spec={"name": "test", "num_classes": 3, "in_channels": 3})
    spec = spec_for(model, tile_size=64)
    image = np.random.default_rng(2).random((96, 80, 3), dtype=np.float32)
    exact = Predictor(TorchBackend(model, device=device), spec).predict_logits(image)
    reduced_backend = TorchBackend(model, device=device, precision=half)
    assert reduced_backend.precision == half and reduced_backend.description.endswith(half)
    reduced = Predictor(reduced_backend, spec).predict_logits(image)
    assert reduced.dtype == np.float32
    assert not np.array_equal(reduced, exact)  # it did run in half precision
    np.testing.assert_allclose(reduced, exact, atol=0.05 * np.abs(exact).max())
    assert (reduced.argmax(axis=0) == exact.argmax(axis=0)).mean() > 0.99


def test_precision_that_the_device_cannot_run_fast_falls_back_to_fp32_with_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pixelwise.hardware

    monkeypatch.setattr(pixelwise.hardware, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="this CPU has no bf16 hardware"):
        assert TorchBackend(small_unet(), precision="bf16").precision == "fp32"
    with pytest.warns(UserWarning, match="fp16 needs a CUDA device"):
        assert TorchBackend(small_unet(), precision="fp16").precision == "fp32"
    assert TorchBackend(small_unet(), precision="auto").precision == "fp32"
