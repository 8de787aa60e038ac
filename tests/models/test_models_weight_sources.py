"""Weights the user already has: files (.pth, .safetensors) and Hugging Face cache folders in smp's and timm's
layouts, found without a network; weights that do not fit are refused in one line naming the keys."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pixelwise.errors import PixelwiseError
from pixelwise.models.pretrained import IMAGENET_MEAN, normalization_for
from pixelwise.models.registry import create_model

# the revision smp pins for smp-hub/resnet18.imagenet (segmentation_models_pytorch/encoders/resnet.py)
SMP_RESNET18_REVISION = "3f2325ff978283d47aa6a1d6878ca20565622683"
# statistics no real encoder uses, so that a test can tell they came from the config.json
OWN_MEAN, OWN_STD = [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache of our own, and no network at all: any connection attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test of offline weights tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def snapshot(cache: Path, repo_id: str, commit: str, *, ref: str | None = None) -> Path:
    """The folder huggingface_hub would download ``repo_id`` at ``commit`` into (refs/<ref> pointing at it)."""
    repository = cache / ("models--" + repo_id.replace("/", "--"))
    folder = repository / "snapshots" / commit
    folder.mkdir(parents=True)
    if ref is not None:
        (repository / "refs").mkdir()
        (repository / "refs" / ref).write_text(commit)
    return folder


def encoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return model.network.encoder.state_dict()


def assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_a_safetensors_file_of_the_encoder_loads(tmp_path: Path) -> None:
    source = create_model("unet", num_classes=2, encoder="resnet18")
    file = tmp_path / "resnet18.safetensors"
    save_file({key: value.contiguous() for key, value in encoder_state(source).items()}, file)
    target = create_model("fpn", num_classes=3, encoder="resnet18", encoder_weights=file)
    assert_same(encoder_state(target), encoder_state(source))


def test_smps_own_cache_layout_is_found_by_its_weight_name(offline: Path) -> None:
    """What smp downloads for encoder_weights='imagenet' is used, with the statistics its config.json gives."""
    source = create_model("unet", num_classes=2, encoder="resnet18")
    folder = snapshot(offline, "smp-hub/resnet18.imagenet", SMP_RESNET18_REVISION)
    save_file({key: value.contiguous() for key, value in encoder_state(source).items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"mean": OWN_MEAN, "std": OWN_STD, "input_space": "RGB"}))
    target = create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="imagenet")
    assert_same(encoder_state(target), encoder_state(source))
    assert target.normalization == (tuple(OWN_MEAN), tuple(OWN_STD))
    grey = normalization_for("resnet18", "imagenet", 1)
    assert grey is not None and grey[0] == pytest.approx((0.2,)) and grey[1] == pytest.approx((0.5,))


def timm_resnet18_in_cache(cache: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """A whole timm resnet18 (classifier included), as timm's hub repository holds it, at refs/main."""
    import timm

    whole = timm.create_model("resnet18", pretrained=False).state_dict()
    folder = snapshot(cache, "timm/resnet18.a1_in1k", "0123abc", ref="main")
    save_file({key: value.contiguous() for key, value in whole.items()}, folder / "model.safetensors")
    config = {"architecture": "resnet18", "pretrained_cfg": {"classifier": "fc", "mean": OWN_MEAN, "std": OWN_STD}}
    (folder / "config.json").write_text(json.dumps(config))
    return whole, folder


def test_timms_cache_layout_fills_a_timm_encoder_and_an_smp_one(offline: Path) -> None:
    whole, folder = timm_resnet18_in_cache(offline)
    body = {key: value for key, value in whole.items() if not key.startswith("fc.")}
    # timm's default weights for tu-resnet18, by name; the classifier has no place in the encoder
    universal = create_model("unet", num_classes=2, encoder="tu-resnet18", encoder_weights="imagenet")
    assert_same(encoder_state(universal), {f"model.{key}": value for key, value in body.items()})
    assert universal.normalization == (tuple(OWN_MEAN), tuple(OWN_STD))
    # the same repository by its name, the snapshot folder and the repository folder, into smp's own resnet18
    for weights in ("hf-hub:timm/resnet18.a1_in1k", folder, folder.parents[1]):
        native = create_model("linknet", num_classes=2, encoder="resnet18", encoder_weights=weights)
        assert_same(encoder_state(native), body)


def test_timm_names_of_nested_stages_meet_smps_flattened_ones(tmp_path: Path) -> None:
    """smp's tu- wrapper spells timm's ``stages.0`` as ``stages_0``; a timm file still fits it."""
    import timm

    whole = timm.create_model("convnext_atto", pretrained=False).state_dict()
    file = tmp_path / "convnext_atto.pth"
    torch.save(whole, file)
    model = create_model("unet", num_classes=2, encoder="tu-convnext_atto", encoder_weights=file)
    loaded = encoder_state(model)
    assert torch.equal(loaded["model.stages_0.blocks.0.conv_dw.weight"], whole["stages.0.blocks.0.conv_dw.weight"])
    assert torch.equal(loaded["model.stem_0.weight"], whole["stem.0.weight"])


def test_weights_that_do_not_fit_say_which_keys_and_shapes(tmp_path: Path) -> None:
    state = encoder_state(create_model("unet", num_classes=2, encoder="resnet18"))
    wrong = dict(state)
    del wrong["layer4.1.bn2.running_mean"]
    wrong["extra.weight"] = torch.zeros(3)
    wrong["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    file = tmp_path / "wrong.safetensors"
    save_file({key: value.contiguous() for key, value in wrong.items()}, file)
    with pytest.raises(PixelwiseError) as caught:
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=file)
    message = str(caught.value)
    assert "\n" not in message
    assert "wrong.safetensors for resnet18 do not fit: 1 missing (e.g. layer4.1.bn2.running_mean)" in message
    assert "1 unexpected (e.g. extra.weight)" in message
    assert "conv1.weight (64, 3, 5, 5) in the file vs (64, 3, 7, 7) in the encoder" in message
    # resnet18's weights are not resnet34's: the blocks resnet34 has more are missing
    torch.save(state, tmp_path / "resnet18.pth")
    with pytest.raises(PixelwiseError, match=r"resnet18\.pth for resnet34 do not fit: \d+ missing \(e\.g\. layer1\.2"):
        create_model("unet", num_classes=2, encoder="resnet34", encoder_weights=tmp_path / "resnet18.pth")


def test_weights_not_in_the_cache_fail_at_once_naming_the_cache_and_the_way_to_fill_it(offline: Path) -> None:
    with pytest.raises(PixelwiseError) as caught:
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="imagenet")
    message = str(caught.value)
    assert f"smp-hub/resnet18.imagenet: not in the Hugging Face cache {offline} (no download here)" in message
    assert "hf download smp-hub/resnet18.imagenet" in message
    with pytest.raises(PixelwiseError, match=r"'noisy' for encoder 'resnet18' is not a weight name of smp's"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights="noisy")
    with pytest.raises(PixelwiseError, match=r"timm/resnet18\.a1_in1k: not in the Hugging Face cache"):
        create_model("unet", num_classes=2, encoder="tu-resnet18", encoder_weights="imagenet")
    # without its weights, an encoder still gets the statistics timm or ImageNet say
    assert normalization_for("resnet18", "imagenet") == (IMAGENET_MEAN, (0.229, 0.224, 0.225))


def test_a_folder_without_weights_or_a_damaged_safetensors_file_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PixelwiseError, match=r"empty: no weights file in this folder \(looked for model\.safetensors"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=empty)
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(PixelwiseError, match=r"damaged\.safetensors: not a readable safetensors file"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=damaged)
