"""The inference spec: what a predictor needs, read from a checkpoint, round-tripped through JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint, write_payload
from pixelwise.data.classes import ClassSpec
from pixelwise.errors import PixelwiseError
from pixelwise.inference.spec import FORMAT, InferenceSpec
from pixelwise.models.registry import create_model

CLASSES = ClassSpec.default(3, names=["background", "cell", "edge"])


def make_spec(**fields: object) -> InferenceSpec:
    settings: dict[str, object] = {"model": "unet", "classes": CLASSES, "mean": (0.5,), "std": (0.25,)}
    settings.update({"in_channels": 1, "tile_size": 128, "stride": 32, **fields})
    return InferenceSpec(**settings)  # type: ignore[arg-type]


def test_the_dict_survives_json_and_reads_back_equal() -> None:
    spec = make_spec(mean=[0.4, 0.5, 0.6], std=[0.2, 0.2, 0.3], in_channels=3)
    assert spec.mean == (0.4, 0.5, 0.6)  # lists become tuples: the spec stays frozen and hashable
    text = json.dumps(spec.to_dict())  # what an ONNX file's metadata can hold
    assert InferenceSpec.from_dict(json.loads(text)) == spec
    assert hash(spec) == hash(InferenceSpec.from_dict(json.loads(text)))
    assert spec.to_dict()["format"] == FORMAT and spec.num_classes == 3


def test_foreign_missing_or_malformed_dicts_name_their_source() -> None:
    good = make_spec().to_dict()
    cases: list[tuple[object, str]] = [
        ({**good, "format": "something/2"}, "not a pixelwise inference spec"),
        ("a string", "not a pixelwise inference spec"),
        ({key: value for key, value in good.items() if key != "stride"}, r"lacks \['stride'\]"),
        ({**good, "mean": 0.5}, "malformed inference spec"),
        ({**good, "std": [0.0]}, r"normalisation std \[0.0\] must be positive"),
        ({**good, "tile_size": "256"}, "tile size must be a positive integer, got '256'"),
        ({**good, "classes": {"names": []}}, "model.onnx"),
    ]
    for raw, message in cases:
        with pytest.raises(PixelwiseError, match=message) as error:
            InferenceSpec.from_dict(raw, source="model.onnx")
        assert str(error.value).startswith("model.onnx: ") and "\n" not in str(error.value)


def test_impossible_specs_are_refused() -> None:
    with pytest.raises(PixelwiseError, match="1 means and 1 stds for 3 input channels"):
        make_spec(in_channels=3)
    with pytest.raises(PixelwiseError, match="stride must be a positive integer, got 0"):
        make_spec(stride=0)
    with pytest.raises(PixelwiseError, match="input channels must be a positive integer, got True"):
        make_spec(in_channels=True)


def _checkpoint(path: Path, **extra: Any) -> Path:
    model = create_model("unet-small", num_classes=3, in_channels=1, width=4, depth=3)
    return save_checkpoint(
        path,
        Checkpoint(
            model="unet-small",
            model_options={"width": 4, "depth": 3},
            state_dict=model.state_dict(),
            classes=CLASSES,
            normalization=Normalization((0.5,), (0.25,)),
            in_channels=1,
            **extra,
        ),
    )


def test_read_from_a_checkpoint_file_or_its_run_folder(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "best.pt", tile_size=96, stride=8)
    expected = make_spec(model="unet-small", tile_size=96, stride=8)
    assert InferenceSpec.from_checkpoint(tmp_path / "best.pt") == expected
    assert InferenceSpec.from_checkpoint(tmp_path) == expected
    # an older checkpoint without tile size and stride: the default tile, the stride of the architecture
    older = InferenceSpec.from_checkpoint(_checkpoint(tmp_path / "older.pt"))
    assert (older.tile_size, older.stride) == (256, 8)


def test_malformed_checkpoints_are_user_errors_naming_the_file(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "odd.pt", tile_size=96, stride=8)
    content = torch.load(tmp_path / "odd.pt", weights_only=True)
    content["normalization"] = {"mean": [0.5]}
    write_payload(tmp_path / "odd.pt", content)  # a new digest: the content is malformed, not damaged
    with pytest.raises(PixelwiseError, match=r"odd\.pt: malformed checkpoint: it has no entry 'std'"):
        InferenceSpec.from_checkpoint(tmp_path / "odd.pt")
    content["normalization"] = {"mean": [0.5, 0.5], "std": [0.2, 0.2]}
    write_payload(tmp_path / "odd.pt", content)
    with pytest.raises(PixelwiseError, match=r"odd\.pt: normalisation has 2 means and 2 stds for 1 input channels"):
        InferenceSpec.from_checkpoint(tmp_path / "odd.pt")


def test_the_band_rule_travels_in_the_dict_only_when_set() -> None:
    import json

    from pixelwise.data.bands import BandRanges, InputBands

    assert "input_bands" not in make_spec().to_dict()
    rule = InputBands((4, 3, 2), None, BandRanges((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)))
    spec = make_spec(input_bands=rule, in_channels=3, mean=(0.5,) * 3, std=(0.2,) * 3)
    assert InferenceSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    broken = spec.to_dict() | {"input_bands": {"ranges": {"low": [1.0]}}}
    with pytest.raises(PixelwiseError, match=r"model\.onnx: malformed inference spec"):
        InferenceSpec.from_dict(broken, source="model.onnx")
    with pytest.raises(PixelwiseError, match="3 bands chosen for 1 input channels"):
        make_spec(input_bands=InputBands((4, 3, 2)))
