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


def test_weights_that_need_a_download_fail_fast_naming_the_offline_options(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match=r"would need a download; offline choices: .*efficientnet-lite0"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="imagenet")
    with pytest.raises(PixelwiseError, match="would need a download"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="ssl")
    with pytest.raises(PixelwiseError, match="no such file"):
        create_model("unet", num_classes=2, encoder_weights=tmp_path / "missing.pth")


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_takes_any_number_of_bands(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, in_channels=5, encoder=SMALL_ENCODER[name]).eval()
    with torch.inference_mode():
        # batch 2: the image-level pooling branches normalise over the batch
        assert model(torch.rand(2, 5, 33, 40)).shape == (2, 2, 33, 40)
    assert model.spec["in_channels"] == 5
    assert create_model(**model.spec).state_dict().keys() == model.state_dict().keys()
