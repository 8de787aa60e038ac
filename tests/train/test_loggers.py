"""--logger tensorboard / mlflow: read back by their own readers, continued by --resume, one line when missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.train import loggers
from pixelwise.train.config import TrainConfig
from pixelwise.train.loop import fit

from .conftest import TinyData

ADVERSARIAL = TrainConfig(
    epochs=1,
    batch_size=4,
    crop_size=16,
    patience=0,
    adversarial_weight=0.01,
    semi_weight=0.1,
    labeled_fraction=0.5,
    discriminator_base_channels=8,
)


def test_both_loggers_get_the_epochs_and_resume_continues_their_runs(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    fit(ADVERSARIAL, tiny_train, tiny_val, out_dir=out, progress=False, loggers=["tensorboard", "mlflow"])
    first = json.loads((out / "loggers.json").read_text())
    # resumed without naming them: the run's own loggers go on, into the same runs
    resumed = fit(ADVERSARIAL.replace(epochs=2), tiny_train, tiny_val, out_dir=out, resume=True, progress=False)
    assert json.loads((out / "loggers.json").read_text()) == first
    steps = [record["iteration"] for record in resumed.history]

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    expected = {"lr", "train/loss", "train/discriminator_loss_real", "val/miou", "val_iou/class1"}
    assert expected | {"pseudo/auroc_softmax"} <= set(tags["scalars"])
    assert [event.step for event in events.Scalars("val/miou")] == steps
    assert [event.value for event in events.Scalars("val/miou")] == pytest.approx(
        [record["val_miou"] for record in resumed.history]
    )
    assert {"overlays/tiny0", "overlays/tiny1", "overlays/tiny2"} <= set(tags["images"])
    image = events.Images("overlays/tiny0")[-1]
    assert image.width == 3 * tiny_val[0].image.shape[1]  # the image, its truth and its prediction side by side

    assert first["mlflow"]["tracking_uri"] == (tmp_path / "mlruns").as_uri()  # a local store beside the run
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=first["mlflow"]["tracking_uri"])
    run = client.get_run(first["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert expected <= set(run.data.metrics) and run.data.params["adversarial_weight"] == "0.01"
    assert [metric.step for metric in client.get_metric_history(run.info.run_id, "val/miou")] == steps
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"best.pt", "config.yaml", "curves.png", "overlays"} <= artifacts
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_a_missing_package_or_a_misspelt_name_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(PixelwiseError, match=r"--logger mlflow needs mlflow: pip install 'pixelwise\[track\]'"):
        loggers.check_loggers(["tensorboard", "mlflow"])
    with pytest.raises(PixelwiseError, match="did you mean 'tensorboard'"):
        loggers.check_loggers(["tensorbord"])
    assert loggers.check_loggers(["tensorboard", "tensorboard"]) == ["tensorboard"]


def test_without_loggers_the_run_folder_has_none_of_their_files(tmp_path: Path, tiny_train: TinyData) -> None:
    fit(ADVERSARIAL.replace(adversarial_weight=0.0, semi_weight=0.0), tiny_train, out_dir=tmp_path, progress=False)
    assert not (tmp_path / "loggers.json").exists() and not (tmp_path / "tensorboard").exists()
