"""Reading checkpoints: safe loading, clear errors for damaged or foreign files, model rebuilding."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from pixelwise.checkpoint import (
    FORMAT,
    load_checkpoint,
    model_from_checkpoint,
    payload_digest,
    stride_from_checkpoint,
)
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.models.registry import create_model
from pixelwise.train.checkpoint import save_checkpoint


def payload(model: torch.nn.Module | None = None) -> dict[str, Any]:
    model = model or create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    return {
        "model": {"name": "unet-small", "options": {"width": 4, "depth": 2}},
        "state_dict": model.state_dict(),
        "classes": ClassSpec.default(2).to_dict(),
        "normalization": {"mean": [0.5], "std": [0.25]},
        "in_channels": 1,
        "tile_size": 64,
    }


def test_round_trip_and_model_rebuild(tmp_path: Path) -> None:
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    path = save_checkpoint(tmp_path / "best.pt", payload(model))
    loaded = load_checkpoint(path)
    assert loaded["format"] == FORMAT and loaded["tile_size"] == 64
    rebuilt = model_from_checkpoint(loaded)
    image = torch.rand(1, 1, 13, 9)
    assert torch.equal(rebuilt(image), model.eval()(image))
    assert load_checkpoint(tmp_path)["path"] == str(path)  # a run folder means its best.pt


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_damaged_and_foreign_files_are_user_errors_naming_the_file(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", payload())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(range(256)) * 4)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    code = tmp_path / "code.pt"
    code.write_bytes(pickle.dumps(ClassSpec.default(2)))  # unpickling would build an arbitrary object
    for path, message in [
        (truncated, "truncated or damaged"),
        (noise, "not a PyTorch checkpoint"),
        (foreign, "not a pixelwise checkpoint"),
        (code, "not a PyTorch checkpoint"),
        (tmp_path / "missing.pt", "no such checkpoint"),
    ]:
        with pytest.raises(PixelwiseError, match=message) as error:
            load_checkpoint(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_weights_that_do_not_fit_the_model_are_a_user_error(tmp_path: Path) -> None:
    content = payload()
    content["model"]["options"] = {"width": 8, "depth": 2}
    with pytest.raises(PixelwiseError, match="the weights do not fit model 'unet-small'"):
        model_from_checkpoint(load_checkpoint(save_checkpoint(tmp_path / "odd.pt", content)))


def test_the_stride_is_stored_or_derived_from_the_architecture(tmp_path: Path) -> None:
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    assert model.stride == 4
    older = load_checkpoint(save_checkpoint(tmp_path / "older.pt", payload(model)))
    assert "stride" not in older and stride_from_checkpoint(older) == 4  # built on the meta device
    newer = load_checkpoint(save_checkpoint(tmp_path / "newer.pt", {**payload(model), "stride": 4}))
    assert stride_from_checkpoint(newer) == 4
    content = payload(model)
    content["model"] = {"name": "unet", "options": {"encoder": "efficientnet-lite0"}}
    assert stride_from_checkpoint(content) == 32


def test_malformed_content_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    content = payload()
    content["model"] = {"name": "no-such-model"}
    loaded = load_checkpoint(save_checkpoint(tmp_path / "odd.pt", content))
    with pytest.raises(PixelwiseError, match=r"odd\.pt: unknown model 'no-such-model'"):
        model_from_checkpoint(loaded)
    content["model"] = "unet-small"  # a string where a mapping belongs
    loaded = load_checkpoint(save_checkpoint(tmp_path / "odder.pt", content))
    with pytest.raises(PixelwiseError, match=r"odder\.pt: malformed checkpoint: string indices"):
        stride_from_checkpoint(loaded)


def test_the_digest_catches_changed_bytes_and_survives_a_round_trip(tmp_path: Path) -> None:
    content = {**payload(), "rng": {"python": (3, tuple(range(5)), None)}, "history": [{"loss": float("nan")}]}
    path = save_checkpoint(tmp_path / "good.pt", content)
    loaded = load_checkpoint(path)
    assert loaded["digest"] == payload_digest(loaded) == payload_digest({"format": FORMAT, **content})
    # one weight changed after saving, the file otherwise intact
    changed = dict(torch.load(path, weights_only=True))
    changed["state_dict"] = {name: tensor.clone() for name, tensor in changed["state_dict"].items()}
    next(iter(changed["state_dict"].values())).view(-1)[0] += 1
    torch.save(changed, tmp_path / "changed.pt")
    with pytest.raises(PixelwiseError, match=r"changed\.pt: damaged: its content no longer matches the digest"):
        load_checkpoint(tmp_path / "changed.pt")


def test_non_finite_weights_and_files_without_a_digest(tmp_path: Path) -> None:
    content = payload()
    next(iter(content["state_dict"].values())).view(-1)[0] = float("inf")
    with pytest.raises(PixelwiseError, match=r"diverged\.pt: 1 of \d+ weight tensors hold NaN or infinite values"):
        load_checkpoint(save_checkpoint(tmp_path / "diverged.pt", content))
    torch.save({"format": FORMAT, **payload()}, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match=r"old\.pt was written before checkpoints carried a digest"):
        assert "digest" not in load_checkpoint(tmp_path / "old.pt")
