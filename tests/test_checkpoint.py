"""Checkpoints: the record and its file, safe loading, clear errors for damaged or foreign files, model rebuilding,
and a format that stays readable both ways (older files load here, files written here load in older code)."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pixelwise.checkpoint import (
    FORMAT,
    REQUIRED_KEYS,
    Checkpoint,
    Normalization,
    load_checkpoint,
    model_from_checkpoint,
    payload_digest,
    save_checkpoint,
    stride_from_checkpoint,
    write_payload,
)
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.models.registry import create_model


def payload(model: torch.nn.Module | None = None) -> Checkpoint:
    model = model or create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    return Checkpoint(
        model="unet-small",
        model_options={"width": 4, "depth": 2},
        state_dict=model.state_dict(),
        classes=ClassSpec.default(2),
        normalization=Normalization((0.5,), (0.25,)),
        in_channels=1,
        tile_size=64,
    )


def test_round_trip_and_model_rebuild(tmp_path: Path) -> None:
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    path = save_checkpoint(tmp_path / "best.pt", payload(model))
    loaded = load_checkpoint(path)
    assert torch.load(path, weights_only=True)["format"] == FORMAT and loaded.tile_size == 64
    assert loaded.classes == ClassSpec.default(2) and loaded.normalization == Normalization((0.5,), (0.25,))
    rebuilt = model_from_checkpoint(loaded)
    image = torch.rand(1, 1, 13, 9)
    assert torch.equal(rebuilt(image), model.eval()(image))
    assert load_checkpoint(tmp_path).path == path  # a run folder means its best.pt


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
    content = replace(payload(), model_options={"width": 8, "depth": 2})
    with pytest.raises(PixelwiseError, match="the weights do not fit model 'unet-small'"):
        model_from_checkpoint(load_checkpoint(save_checkpoint(tmp_path / "odd.pt", content)))


def test_the_stride_is_stored_or_derived_from_the_architecture(tmp_path: Path) -> None:
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    assert model.stride == 4
    older = load_checkpoint(save_checkpoint(tmp_path / "older.pt", payload(model)))
    assert older.stride is None and stride_from_checkpoint(older) == 4  # built on the meta device
    assert "stride" not in torch.load(tmp_path / "older.pt", weights_only=True)
    newer = load_checkpoint(save_checkpoint(tmp_path / "newer.pt", replace(payload(model), stride=4)))
    assert stride_from_checkpoint(newer) == 4
    content = replace(payload(model), model="unet", model_options={"encoder": "efficientnet-lite0"})
    assert stride_from_checkpoint(content) == 32


def test_malformed_content_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    content = replace(payload(), model="no-such-model", model_options={})
    loaded = load_checkpoint(save_checkpoint(tmp_path / "odd.pt", content))
    with pytest.raises(PixelwiseError, match=r"odd\.pt: unknown model 'no-such-model'"):
        model_from_checkpoint(loaded)
    # a string where a mapping belongs: the record refuses it as the file is read
    write_payload(tmp_path / "odder.pt", {**payload().to_payload(), "model": "unet-small"})
    with pytest.raises(PixelwiseError, match=r"odder\.pt: malformed checkpoint: string indices"):
        stride_from_checkpoint(load_checkpoint(tmp_path / "odder.pt"))


def test_the_digest_catches_changed_bytes_and_survives_a_round_trip(tmp_path: Path) -> None:
    extra = {"rng": {"python": (3, tuple(range(5)), None)}, "history": [{"loss": float("nan")}]}
    content = replace(payload(), extra=extra)
    path = save_checkpoint(tmp_path / "good.pt", content)
    loaded = load_checkpoint(path)
    assert loaded.digest == payload_digest(loaded.to_payload()) == payload_digest(content.to_payload())
    # one weight changed after saving, the file otherwise intact
    changed = dict(torch.load(path, weights_only=True))
    changed["state_dict"] = {name: tensor.clone() for name, tensor in changed["state_dict"].items()}
    next(iter(changed["state_dict"].values())).view(-1)[0] += 1
    torch.save(changed, tmp_path / "changed.pt")
    with pytest.raises(PixelwiseError, match=r"changed\.pt: damaged: its content no longer matches the digest"):
        load_checkpoint(tmp_path / "changed.pt")


def test_non_finite_weights_and_files_without_a_digest(tmp_path: Path) -> None:
    content = payload()
    next(iter(content.state_dict.values())).view(-1)[0] = float("inf")
    with pytest.raises(PixelwiseError, match=r"diverged\.pt: 1 of \d+ weight tensors hold NaN or infinite values"):
        load_checkpoint(save_checkpoint(tmp_path / "diverged.pt", content))
    torch.save(payload().to_payload(), tmp_path / "old.pt")
    with pytest.warns(UserWarning, match=r"old\.pt was written before checkpoints carried a digest"):
        assert load_checkpoint(tmp_path / "old.pt").digest is None


def test_a_file_in_the_format_written_before_the_record_loads_into_it(tmp_path: Path) -> None:
    """A last.pt as `pixelwise train` wrote it before issue 18: a plain dict, the resuming keys among the others."""
    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    written = {
        "model": {"name": "unet-small", "options": {"width": 4, "depth": 2}},
        "state_dict": model.state_dict(),
        "classes": ClassSpec.default(2).to_dict(),
        "normalization": {"mean": [0.5], "std": [0.25]},
        "in_channels": 1,
        "tile_size": 64,
        "stride": 4,
        "config": {"epochs": 2},
        "metrics": {"miou": 0.5},
        "versions": {"pixelwise": "0.1.0"},
        "epoch": 2,
        "optimizer": {"state": {}, "param_groups": []},
        "iteration": 8,
        "history": [{"epoch": 1}, {"epoch": 2}],
    }
    loaded = load_checkpoint(write_payload(tmp_path / "last.pt", written))
    assert (loaded.model, dict(loaded.model_options), loaded.stride, loaded.epoch) == ("unet-small", written["model"]["options"], 4, 2)  # fmt: skip
    assert (dict(loaded.config), dict(loaded.metrics), loaded.in_channels) == ({"epochs": 2}, {"miou": 0.5}, 1)
    assert list(loaded.extra) == ["optimizer", "iteration", "history"]  # the resuming state, as it was
    # written back, it is the same file content: nothing lost, nothing reordered
    assert payload_digest(loaded.to_payload()) == loaded.digest


def test_a_file_written_here_reads_as_older_code_reads_it(tmp_path: Path) -> None:
    """Older pixelwise reads the keys of the format by name, as plain values, and checks the same digest."""
    checkpoint = replace(payload(), stride=4, config={"epochs": 2}, metrics={"miou": None}, epoch=3)
    raw = torch.load(save_checkpoint(tmp_path / "best.pt", checkpoint), weights_only=True)
    assert raw["format"] == FORMAT and all(key in raw for key in REQUIRED_KEYS)
    assert raw["model"] == {"name": "unet-small", "options": {"width": 4, "depth": 2}}
    assert ClassSpec.from_dict(raw["classes"]) == ClassSpec.default(2)
    assert raw["normalization"] == {"mean": [0.5], "std": [0.25]}
    assert (raw["in_channels"], raw["tile_size"], raw["stride"], raw["epoch"]) == (1, 64, 4, 3)
    assert raw["config"] == {"epochs": 2} and raw["metrics"] == {"miou": None}
    assert raw["digest"] == payload_digest(raw) and next(iter(raw)) == "format" and list(raw)[-1] == "digest"


def test_keys_of_a_newer_version_pass_through(tmp_path: Path) -> None:
    """A key this version does not know (issue 21's band statistics, say) is kept in ``extra`` and written back."""
    write_payload(tmp_path / "newer.pt", {**payload().to_payload(), "band_statistics": [0.5]})
    loaded = load_checkpoint(tmp_path / "newer.pt")
    assert loaded.extra == {"band_statistics": [0.5]}
    again = load_checkpoint(save_checkpoint(tmp_path / "again.pt", loaded))
    assert again.extra == {"band_statistics": [0.5]}


def test_the_training_resolution_is_an_optional_field(tmp_path: Path) -> None:
    """``mpp`` (issue 20): written only when known, read back; files without it load with None."""
    assert (
        "mpp" not in payload().to_payload()
        and load_checkpoint(save_checkpoint(tmp_path / "a.pt", payload())).mpp is None
    )
    loaded = load_checkpoint(save_checkpoint(tmp_path / "b.pt", replace(payload(), mpp=0.5)))
    assert loaded.mpp == 0.5 and loaded.extra == {}


def test_a_failed_save_leaves_the_previous_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.pt"
    save_checkpoint(target, payload())
    before = target.read_bytes()

    def crash(obj: object, file: str) -> None:
        Path(file).write_bytes(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the process fails
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, payload())
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.pt"]
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new.pt", payload())
    assert not (tmp_path / "new.pt").exists()


def test_the_band_rule_is_an_optional_field_written_only_when_set(tmp_path: Path) -> None:
    from pixelwise.data.bands import BandRanges, InputBands
    from pixelwise.inference.spec import InferenceSpec

    plain = save_checkpoint(tmp_path / "plain.pt", payload())
    assert "input_bands" not in torch.load(plain, weights_only=True) and load_checkpoint(plain).input_bands is None
    rule = InputBands(("B8",), 0.0, BandRanges((300.0,), (9000.0,)))
    banded = save_checkpoint(tmp_path / "bands.pt", replace(payload(), input_bands=rule))
    assert torch.load(banded, weights_only=True)["input_bands"] == {
        "selection": ["B8"],
        "nodata": 0.0,
        "ranges": {"low": [300.0], "high": [9000.0]},
    }
    assert load_checkpoint(banded).input_bands == rule
    assert InferenceSpec.from_checkpoint(banded).input_bands == rule  # what predict and export read
