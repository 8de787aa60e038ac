"""`pixelwise train` end to end on a tiny built-in dataset, resume, --config, and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from pixelwise.cli import main

TINY = ["shapes", "--data-option", "count=8", "--data-option", "size=32", "--crop-size", "32", "--batch-size", "4"]


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["pixelwise", "train", *args])
    code = 0
    try:
        main()
    except SystemExit as exit:
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))


def test_train_then_resume_with_more_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    settings = tmp_path / "settings.yaml"
    settings.write_text("epochs: 5\nlr: 0.003\nrotation: 0\n")
    code, stdout, _ = run(
        [*TINY, "--out", str(out), "--config", str(settings), "--epochs", "1", "-q"], monkeypatch, capsys
    )
    assert code == 0, stdout
    assert "best epoch 1 (val mIoU" in stdout and str(out / "best.pt") in stdout
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["epochs"], saved["lr"], saved["rotation"], saved["crop_size"]) == (1, 0.003, 0.0, 32)

    code, _, err = run([*TINY, "--out", str(out), "--epochs", "1", "-q"], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "not empty; pass --resume" in err

    code, stdout, _ = run([*TINY, "--out", str(out), "--resume", "--epochs", "2", "-q"], monkeypatch, capsys)
    assert code == 0, stdout
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert yaml.safe_load((out / "config.yaml").read_text())["lr"] == 0.003  # the run's own settings kept


def test_adversarial_semi_supervised_from_the_same_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = [*TINY, "--out", str(out), "--epochs", "1", "-q", "--adversarial-weight", "0.01", "--semi-weight", "0.1"]
    args += ["--labeled-fraction", "0.5", "--set", "discriminator_base_channels=8"]
    code, stdout, _ = run(args, monkeypatch, capsys)
    assert code == 0, stdout
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"train_discriminator_loss", "train_discriminator_accuracy_real", "train_semi_fraction"} <= set(record)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "zero"], "epochs must be a whole number, got 'zero'"),
        (["--loss", "hinge"], "loss is 'hinge'; choose one of ce, dice, focal, ce+dice"),
        (["--set", "colour=red"], "unknown settings ['colour']"),
        (["--resume"], "no config.yaml to resume from"),
        (["--time", "soon"], "time 'soon': give a duration such as 90s, 10m, 2h or 1h30m"),
        (["--logger", "tensorbord"], "--logger 'tensorbord' (did you mean 'tensorboard'?)"),
    ],
)
def test_bad_values_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, _, err = run([*TINY, "--out", str(tmp_path / "run"), *extra], monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "run").exists()


def test_a_dataset_without_val_holds_out_training_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from pixelwise.data.builtin import export_builtin

    data = export_builtin("shapes", tmp_path / "data", count=12, size=32)
    shutil.rmtree(data / "val")
    train_count = len(list((data / "train" / "images").iterdir()))
    args = [str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--crop-size", "32", "--batch-size", "4"]
    code, stdout, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    held = round(0.15 * train_count)
    assert f"no validation images: holding out {held} of {train_count} training images for validation" in err
    assert "best epoch 1 (val mIoU" in stdout
    # val_fraction 0: none held out, and best.pt follows the training loss, as the log says
    code, stdout, err = run([*args, "--overwrite", "--val-fraction", "0"], monkeypatch, capsys)
    assert code == 0, err
    assert "best.pt follows the training loss" in err and "best epoch 1 (train loss" in stdout


def test_every_setting_has_a_flag_and_the_help_keeps_names_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from pixelwise.train.config import TrainConfig

    monkeypatch.setenv("COLUMNS", "80")
    code, stdout, _ = run(["--help"], monkeypatch, capsys)
    assert code == 0
    words = set(stdout.replace("/", " ").split())
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "model_options":
            assert "--model-option" in words
        elif isinstance(field.default, bool):
            assert {flag, f"--no-{flag[2:]}"} <= words, flag  # on/off settings are flags, not <bool>
        else:
            assert flag in words, flag
    assert "…" not in stdout and "<bool>" not in stdout
    assert "[default: 30]" in stdout and "[default: 0.75,1.25]" in stdout and "--force" not in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 80


def test_model_options_and_on_off_flags_reach_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixelwise.checkpoint import load_checkpoint

    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = [*TINY, "--out", str(out), "--epochs", "1", "-q", "--model-option", "width=8", "--no-channels-last"]
    code, _, err = run([*args, "--overwrite", "--model-option", "depth=3"], monkeypatch, capsys)
    assert code == 0, err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model_options"] == {"width": 8, "depth": 3} and saved["channels_last"] is False
    assert load_checkpoint(out / "best.pt").model_options == {"width": 8, "depth": 3}
    code, _, err = run([*args, "--overwrite"], monkeypatch, capsys)
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "epoch=3"], "unknown settings ['epoch'] (did you mean 'epochs'?)"),
        (["--model-option", "widht=8"], "model 'unet-small' has no option 'widht' (did you mean 'width'?)"),
        (["--model", "unet", "--model-option", "width=8"], "model 'unet' has no option 'width'; its options:"),
        (["--threads", "0"], "--threads 0: give 1 or more"),
        (["--overwrite", "--resume"], "--resume and --overwrite contradict each other"),
    ],
)
def test_bad_settings_are_one_line_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, _, err = run([*TINY, "--out", str(tmp_path / "run"), *extra], monkeypatch, capsys)
    assert (code, err.count("\n")) == (2, 1)
    assert message in err
    assert not (tmp_path / "run").exists()


def test_settings_not_given_are_planned_from_the_data_printed_and_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """shapes at 48²: crop 48 → 64 and batch 32 from the sizes, ce+dice for its small shapes; --batch-size
    given stays, and the plan says so."""
    out = tmp_path / "run"
    args = ["shapes", "--data-option", "count=8", "--data-option", "size=48", "--out", str(out), "--epochs", "1"]
    code, _, err = run([*args, "--batch-size", "4"], monkeypatch, capsys)
    assert code == 0, err
    assert "plan from the data (" in err
    assert "crop_size 64" in err and "median image 48×48" in err
    assert "batch_size 4" in err and "given (the data says" in err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    plan = json.loads((out / "data_plan.json").read_text())
    assert (saved["crop_size"], saved["batch_size"], saved["normalization"]) == (64, 4, "dataset")
    assert saved["loss"] == plan["settings"]["loss"]
    assert plan["given"] == ["batch_size"] and plan["fingerprint"]["median_size"] == [48, 48]
    # resuming keeps the run's own settings: nothing is planned again
    code, _, err = run([*args[:-1], "2", "--resume"], monkeypatch, capsys)
    assert code == 0 and "plan from the data" not in err
