"""`pixelwise models`: every architecture `--model` takes, with each of its options, and the encoders."""

from __future__ import annotations

import re
from typing import Any

from pixelwise.models import list_encoders, list_models, model_options


def test_models_lists_every_architecture_with_its_options(cli: Any) -> None:
    result = cli("models")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    starts = [line.split()[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert starts[: len(list_models())] == list_models()
    flat = re.sub(r"\s+", " ", text)
    for name in list_models():
        entry = flat.split(f" {name} ", 1)[-1] if name != list_models()[0] else flat
        for option, default in model_options(name).items():
            assert f"{option}=" in entry, (name, option)
            if not isinstance(default, tuple | list | type(None) | bool):
                assert f"{option}={default}" in entry, (name, option)
    assert "unet-small" in flat and "[default, no encoder]" in flat
    assert "width=16, depth=4" in flat
    assert "decoder_channels=[256, 128, 64, 32, 16]" in flat  # as one types it after --model-option


def test_models_encoders(cli: Any) -> None:
    result = cli("models", "--encoders")
    assert result.returncode == 0
    listed = re.sub(r"\s+", "", result.stdout.split("\n", 1)[1]).split(",")
    assert listed == list_encoders() and listed[0] == "efficientnet-lite0"


def test_the_model_flags_point_to_the_list(cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("train", "compare"):
        text = re.sub(r"\s+", " ", cli(command, "-h").stdout)
        model_help = text.split("--model NAME", 1)[1][:120]
        assert "`pixelwise models`" in model_help, command
