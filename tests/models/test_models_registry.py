"""The model registry: every model takes any size, returns logits of that size, and trains (finite gradients)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixelwise.errors import PixelwiseError
from pixelwise.models.registry import MODELS, create_model, list_models, model_options

# the smallest encoder that each architecture accepts keeps the test fast; unet-small has none
SMALL_ENCODER = {name: ("efficientnet-lite0" if MODELS[name].uses_encoder else None) for name in MODELS}


def test_registry_holds_the_smp_architectures_fcn_and_the_small_unet() -> None:
    expected = {"unet", "unetplusplus", "fpn", "deeplabv3", "deeplabv3plus", "pspnet", "linknet", "manet", "pan"}
    assert expected | {"upernet", "segformer", "fcn", "unet-small"} <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_any_size_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=3, encoder=SMALL_ENCODER[name])
    model.train()
    # batch 2: the image-level pooling branches of DeepLabV3 / PAN / UPerNet normalise over the batch
    images = torch.rand(2, 3, 45, 59)
    logits = model(images)
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, 3, 45, 59)
    logits.square().mean().backward()
    gradients = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    assert gradients, "no parameter received a gradient"
    assert all(torch.isfinite(gradient).all() for gradient in gradients)
    # create_model(**spec) rebuilds the same architecture: what a checkpoint relies on
    rebuilt = create_model(**model.spec)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


def test_tiny_inputs_smaller_than_the_padding_work() -> None:
    model = create_model("unet", num_classes=2, in_channels=1).eval()
    with torch.inference_mode():
        assert model(torch.rand(1, 1, 3, 5)).shape == (1, 2, 3, 5)


def test_channels_last_inputs_keep_their_layout_through_the_padding() -> None:
    model = create_model("unet-small", num_classes=2, in_channels=3, width=4, depth=2).eval()
    model = model.to(memory_format=torch.channels_last)
    images = torch.rand(1, 3, 10, 14).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        standard = model(images.contiguous())
        fast = model(images)
    torch.testing.assert_close(fast, standard, rtol=1e-4, atol=1e-5)


def test_grey_and_many_channel_inputs() -> None:
    for channels in (1, 4):
        model = create_model("fcn", num_classes=5, in_channels=channels, encoder="resnet18").eval()
        with torch.inference_mode():
            assert model(torch.rand(1, channels, 33, 40)).shape == (1, 5, 33, 40)
        assert model.spec == {"name": "fcn", "num_classes": 5, "in_channels": channels, "encoder": "resnet18"}


def test_options_reach_the_network_and_unknown_ones_are_refused() -> None:
    model = create_model("unet-small", num_classes=2, width=8, depth=3)
    assert model.stride == 8
    assert model.spec["width"] == 8
    assert "decoder_channels" in model_options("unet")
    with pytest.raises(PixelwiseError, match="no option colour; its options are: depth, width"):
        create_model("unet-small", num_classes=2, colour="red")
    with pytest.raises(PixelwiseError, match="no option upsampling"):
        create_model("pspnet", num_classes=2, upsampling=4)


def test_unknown_model_and_encoder_list_the_choices() -> None:
    with pytest.raises(
        PixelwiseError,
        match=r"unknown model 'unet3d' \(did you mean 'unet'\?\); choose one of: deeplabv3, .*unet-small",
    ):
        create_model("unet3d", num_classes=2)
    with pytest.raises(
        PixelwiseError,
        match=r"unknown encoder 'resnet19' \(did you mean 'resnet18'\?\); choose one of: efficientnet-lite0, .*resnet18",
    ):
        create_model("unet", num_classes=2, encoder="resnet19")
    with pytest.raises(PixelwiseError, match="own small encoder"):
        create_model("unet-small", num_classes=2, encoder="resnet18")
    with pytest.raises(PixelwiseError, match="num_classes must be a positive integer"):
        create_model("unet", num_classes=0)


def test_incompatible_encoder_is_a_user_error() -> None:
    # smp's U-Net++ refuses transformer encoders; the user sees one line, not a ValueError traceback
    with pytest.raises(PixelwiseError, match="model 'unetplusplus' with encoder 'mit_b0'"):
        create_model("unetplusplus", num_classes=2, encoder="mit_b0")


def test_weights_that_need_a_download_fail_fast_naming_the_offline_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(PixelwiseError, match=r"not in the Hugging Face cache .*no download here.*efficientnet-lite0"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="imagenet")
    with pytest.raises(PixelwiseError, match=r"smp-hub/resnet18\.ssl: not in the Hugging Face cache"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="ssl")
    with pytest.raises(PixelwiseError, match="no such file"):
        create_model("unet", num_classes=2, encoder_weights=tmp_path / "missing.pth")


class _Samples(list):  # type: ignore[type-arg]
    """Training samples with what ``fit`` reads besides them."""

    def __init__(self, samples: list[object], classes: object, in_channels: int) -> None:
        super().__init__(samples)
        self.classes = classes
        self.in_channels = in_channels
        self.unlabeled_paths: list[Path] = []


def test_a_checkpoint_loads_in_plain_smp_as_the_readme_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's few lines rebuild a trained pixelwise model in smp alone, with equal logits."""
    import re
    from typing import NamedTuple

    import numpy as np
    import torch

    import pixelwise as pw
    from pixelwise.checkpoint import model_from_checkpoint
    from pixelwise.data.classes import ClassSpec

    class Sample(NamedTuple):
        image: np.ndarray
        mask: np.ndarray
        stem: str
        image_path: Path

    rng = np.random.default_rng(0)
    samples = []
    for index in range(2):
        mask = (rng.random((32, 32)) > 0.7).astype(np.uint8) * 2
        image = np.repeat((mask[..., None] / 2 + rng.normal(0, 0.1, (32, 32, 1))).astype(np.float32), 3, axis=2)
        samples.append(Sample(image.clip(0, 1), mask, f"s{index}", Path(f"s{index}.png")))
    train = _Samples(samples, ClassSpec.default(3), 3)
    config = pw.TrainConfig(
        model="fpn",
        encoder="efficientnet-lite0",
        model_options={"decoder_dropout": 0.0},
        epochs=1,
        crop_size=32,
        batch_size=2,
        device="cpu",
    )
    pw.fit(config, train, train, out_dir=tmp_path / "runs" / "lite", progress=False)

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = re.search(r"```python\n(import segmentation_models_pytorch as smp.*?)```", readme, re.S)
    assert code is not None, "the README lost its example of loading a checkpoint in smp"
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), names)
    smp_model = names["model"]
    assert type(smp_model).__module__.startswith("segmentation_models_pytorch")
    ours = model_from_checkpoint(tmp_path / "runs" / "lite" / "best.pt").eval()
    images = torch.rand(2, 3, 64, 96)
    with torch.inference_mode():
        torch.testing.assert_close(smp_model.eval()(images), ours(images), rtol=0, atol=0)  # type: ignore[operator]


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_takes_any_number_of_bands(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, in_channels=5, encoder=SMALL_ENCODER[name]).eval()
    with torch.inference_mode():
        # batch 2: the image-level pooling branches normalise over the batch
        assert model(torch.rand(2, 5, 33, 40)).shape == (2, 2, 33, 40)
    assert model.spec["in_channels"] == 5
    assert create_model(**model.spec).state_dict().keys() == model.state_dict().keys()
