"""TrainConfig: defaults, YAML file, overrides on top, and one-line errors naming the setting and the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig


def test_yaml_overrides_defaults_and_flags_override_yaml(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    # "1e-3" is a string to YAML 1.1 (no dot): it must still become the float 0.001
    file.write_text("epochs: 12\nlr: 1e-3\nscale_range: [0.5, 2]\nclass_weights: [1, 4]\nloss: ce+dice\n")
    config = TrainConfig.from_yaml(file, epochs=3, optimizer="sgd")
    assert (config.epochs, config.lr, config.loss, config.optimizer) == (3, 0.001, "ce+dice", "sgd")
    assert config.scale_range == (0.5, 2.0) and config.class_weights == (1.0, 4.0)
    assert config.batch_size == TrainConfig().batch_size


def test_saved_yaml_reads_back_equal(tmp_path: Path) -> None:
    config = TrainConfig(epochs=7, encoder_weights="imagenet", adversarial_weight=0.01, discriminator_betas=(0.5, 0.9))
    config.save_yaml(tmp_path / "config.yaml")
    assert TrainConfig.from_yaml(tmp_path / "config.yaml") == config
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_replace_converts_flag_strings_and_keeps_the_original() -> None:
    base = TrainConfig()
    changed = base.replace(lr="0.5", epochs="4", amp="yes", encoder="none", scale_range="0.8,1.2")
    assert (changed.lr, changed.epochs, changed.amp, changed.encoder, changed.scale_range) == (
        0.5,
        4,
        True,
        None,
        (0.8, 1.2),
    )
    assert base == TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.epochs = 3  # type: ignore[misc]


def test_zero_weights_mean_plain_supervised_training() -> None:
    assert not TrainConfig().uses_discriminator
    assert TrainConfig(adversarial_weight=0.01).uses_discriminator
    assert TrainConfig(semi_weight=0.1).uses_discriminator


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"optimizer": "adam"}, r"optimizer is 'adam' \(did you mean 'adamw'\?\); choose one of adamw, sgd"),
        ({"schedule": "step"}, "schedule is 'step'; choose one of poly, cosine, constant"),
        ({"loss": "lovasz"}, "loss is 'lovasz'"),
        ({"lr": 0}, "lr must be positive, got 0"),
        ({"lr": "fast"}, "lr must be a number, got 'fast'"),
        ({"epochs": 2.5}, "epochs must be a whole number, got 2.5"),
        ({"labeled_fraction": 0}, r"labeled_fraction must be in \(0, 1\], got 0"),
        ({"semi_threshold": 1.5}, r"semi_threshold must be in \[0, 1\)"),
        ({"scale_range": [2, 1]}, "scale_range must be"),
        ({"scale_range": [1]}, "scale_range must be a list of 2 numbers"),
        ({"amp": "maybe"}, "amp must be true or false"),
        ({"colour": 1}, r"unknown settings \['colour'\]"),
    ],
)
def test_bad_values_are_one_line_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(PixelwiseError, match=message) as error:
        TrainConfig().replace(**overrides)
    assert "\n" not in str(error.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(PixelwiseError, match=rf"{file}: unknown settings \['learning_rate'\]"):
        TrainConfig.from_yaml(file)
    file.write_text("epochs: [3\n")
    with pytest.raises(PixelwiseError, match=f"{file}: not valid YAML"):
        TrainConfig.from_yaml(file)
    file.write_text("- 3\n")
    with pytest.raises(PixelwiseError, match=f"{file}: expected a mapping"):
        TrainConfig.from_yaml(file)
    file.write_text("batch_size: many\n")
    with pytest.raises(PixelwiseError, match=f"{file}: batch_size must be a whole number"):
        TrainConfig.from_yaml(file)
    with pytest.raises(PixelwiseError, match="no such config file"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert TrainConfig.from_yaml(tmp_path / "empty.yaml") == TrainConfig()


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(TrainConfig):
        doc = field.metadata.get("doc", "")
        assert doc and "\n" not in doc, field.name


def test_a_near_miss_says_did_you_mean() -> None:
    with pytest.raises(PixelwiseError, match=r"unknown settings \['epoch'\] \(did you mean 'epochs'\?\)$"):
        TrainConfig().replace(epoch=3)


def test_model_options_are_checked_against_the_model(tmp_path: Path) -> None:
    config = TrainConfig().replace(model_options={"width": 8, "depth": 3})
    assert config.model_options == {"width": 8, "depth": 3} and TrainConfig().model_options == {}
    hash(config)  # a config stays hashable with a mapping inside
    file = tmp_path / "run.yaml"
    config.save_yaml(file)
    assert TrainConfig.from_yaml(file) == config
    with pytest.raises(
        PixelwiseError,
        match=r"model 'unet-small' has no option 'widht' \(did you mean 'width'\?\); its options: depth, width",
    ):
        TrainConfig(model_options={"widht": 8})
    with pytest.raises(PixelwiseError, match="width must be a whole number, got 'wide'"):
        TrainConfig(model_options={"width": "wide"})
    with pytest.raises(PixelwiseError, match="model_options must be a mapping"):
        TrainConfig().replace(model_options=[8])


def test_devices_follow_the_cli_convention() -> None:
    assert TrainConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(PixelwiseError, match="device is 'gpu'; choose one of auto, cpu, cuda, cuda:N"):
        TrainConfig(device="gpu")
