"""fit(): resume exactness, early stopping, the three modes, unlabeled images, run folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from pixelwise.checkpoint import load_checkpoint, model_from_checkpoint
from pixelwise.errors import PixelwiseError
from pixelwise.train import loop
from pixelwise.train.config import TrainConfig
from pixelwise.train.loop import fit

from .conftest import TinyData, make_data

# a small, fast configuration: the tiny U-Net at width 16 on 16² crops
FAST = TrainConfig(epochs=1, batch_size=4, crop_size=16, lr=3e-3, patience=0, discriminator_base_channels=8)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def test_resume_gives_the_same_weights_as_a_straight_run(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData, monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    """Bitwise on the CPU, with the discriminator. On CUDA (``--deterministic``) the segmenter alone: the
    discriminator upsamples bilinearly, whose CUDA backward has no deterministic kernel; and the logged
    losses agree to rounding only (cross-entropy's mean is summed with atomic adds on the GPU)."""
    adversarial = {"adversarial_weight": 0.01, "semi_weight": 0.1, "labeled_fraction": 0.5}
    config = FAST.replace(epochs=2, device=device, deterministic=device == "cuda")
    if device == "cpu":
        config = config.replace(**adversarial, discriminator_real_smoothing=0.1)
    straight = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "straight", progress=False)

    # the same run, interrupted (Ctrl-C) during its second epoch, then resumed
    epochs_begun = []
    real_train_epoch = loop._train_epoch

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        epochs_begun.append(args[3])
        if len(epochs_begun) == 2:
            raise KeyboardInterrupt
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(loop, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tiny_train, tiny_val, out_dir=tmp_path / "resumed", progress=False)
    monkeypatch.setattr(loop, "_train_epoch", real_train_epoch)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt").epoch == 1
    resumed = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "resumed", resume=True, progress=False)

    assert [record["epoch"] for record in resumed.history] == [1, 2]
    resumed_weights = weights(resumed.last_checkpoint)
    for name, tensor in weights(straight.last_checkpoint).items():
        assert torch.equal(tensor, resumed_weights[name]), name
    if config.uses_discriminator:
        discriminator_straight = load_checkpoint(straight.last_checkpoint).extra["discriminator"]["state_dict"]
        discriminator_resumed = load_checkpoint(resumed.last_checkpoint).extra["discriminator"]["state_dict"]
        for name, tensor in discriminator_straight.items():
            assert torch.equal(tensor, discriminator_resumed[name]), name
    keys = [key for key in ("train_loss", "train_discriminator_loss", "val_miou") if key in straight.history[0]]
    logged = [r[k] for r in straight.history for k in keys]
    again = [r[k] for r in resumed.history for k in keys]
    assert logged == (again if device == "cpu" else pytest.approx(again, rel=1e-6))
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_the_same_seed_repeats_and_another_seed_differs(tmp_path: Path, tiny_train: TinyData, device: str) -> None:
    """On the CPU as it is; on CUDA with ``deterministic`` (cuDNN picks non-deterministic kernels otherwise)."""
    config = FAST.replace(device=device, deterministic=device == "cuda")
    runs = [
        fit(config.replace(seed=seed), tiny_train, out_dir=tmp_path / f"run{i}", progress=False)
        for i, seed in enumerate((3, 3, 4))
    ]
    first, again, other = (weights(run.last_checkpoint) for run in runs)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_early_stopping_stops_after_patience_epochs_without_improvement(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData
) -> None:
    # an improvement must exceed min_delta = 2 (mIoU is at most 1): only epoch 1 counts as best
    config = FAST.replace(epochs=10, patience=2, min_delta=2.0)
    result = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "run", progress=False)
    assert result.stopped_early
    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    assert result.best_epoch == 1
    assert load_checkpoint(result.best_checkpoint).epoch == 1
    assert load_checkpoint(result.last_checkpoint).epoch == 3
    # resuming a run that stopped early does not train further
    again = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "run", resume=True, progress=False)
    assert len(again.history) == 3 and again.stopped_early


def test_a_run_folder_has_everything_and_predict_can_rebuild_the_model(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData
) -> None:
    result = fit(FAST, tiny_train, tiny_val, out_dir=tmp_path / "run", progress=False)
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [
        "best.pt",
        "config.yaml",
        "curves.png",
        "last.pt",
        "metrics.jsonl",
    ]
    assert TrainConfig.from_yaml(tmp_path / "run" / "config.yaml") == FAST
    checkpoint = load_checkpoint(result.best_checkpoint)
    written = torch.load(result.best_checkpoint, weights_only=True)  # the file's keys, as older readers see them
    for key in (
        "format",
        "model",
        "state_dict",
        "classes",
        "normalization",
        "in_channels",
        "tile_size",
        "stride",
        "config",
        "metrics",
        "versions",
    ):
        assert key in written
    assert "optimizer" not in written  # best.pt is for prediction; last.pt is for resuming
    assert {"optimizer", "scheduler", "rng", "early_stopping", "history"} <= set(
        load_checkpoint(result.last_checkpoint).extra
    )
    # the statistics of the training images, stored for the predictor
    pixels = torch.cat([torch.from_numpy(sample.image).reshape(-1) for sample in tiny_train]).double()
    assert checkpoint.normalization.mean[0] == pytest.approx(pixels.mean().item(), rel=1e-6)
    assert checkpoint.normalization.std[0] == pytest.approx(pixels.std(unbiased=False).item(), rel=1e-6)
    model = model_from_checkpoint(result.best_checkpoint)
    assert not model.training
    assert model(torch.zeros(1, 1, 19, 23)).shape == (1, 3, 19, 23)


def test_refuses_a_non_empty_folder_without_resume_or_force(tmp_path: Path, tiny_train: TinyData) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PixelwiseError, match="not empty; pass --resume"):
        fit(FAST, tiny_train, out_dir=out, progress=False)
    fit(FAST, tiny_train, out_dir=out, force=True, progress=False)
    assert (out / "notes.txt").read_text() == "mine"  # --force replaces only the run's own files
    with pytest.raises(PixelwiseError, match=r"no last\.pt to resume"):
        fit(FAST, tiny_train, out_dir=tmp_path / "empty", resume=True, progress=False)


@pytest.mark.parametrize(("adversarial_weight", "semi_weight"), [(0.01, 0.0), (0.01, 0.1)], ids=["adversarial", "semi"])
def test_adversarial_and_semi_modes_log_discriminator_metrics(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData, adversarial_weight: float, semi_weight: float
) -> None:
    config = FAST.replace(adversarial_weight=adversarial_weight, semi_weight=semi_weight, labeled_fraction=0.5)
    record = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "run", progress=False).history[0]
    assert 0 < record["train_discriminator_loss"] < 10
    assert 0 <= record["train_discriminator_accuracy_real"] <= 1
    assert 0 <= record["train_discriminator_accuracy_fake"] <= 1
    assert 0 <= record["train_semi_fraction"] <= 1
    assert record["train_unlabeled_adversarial_loss"] > 0
    assert ("train_semi_loss" in record) == (semi_weight > 0)


def test_semi_supervised_term_waits_for_semi_start(tmp_path: Path, tiny_train: TinyData) -> None:
    config = FAST.replace(epochs=2, semi_weight=0.1, labeled_fraction=0.5, semi_start=1)  # 1 iteration per epoch
    history = fit(config, tiny_train, out_dir=tmp_path / "run", progress=False).history
    assert "train_semi_loss" not in history[0] and "train_semi_loss" in history[1]


def test_semi_supervised_needs_unlabeled_images(tmp_path: Path, tiny_train: TinyData) -> None:
    with pytest.raises(PixelwiseError, match="needs unlabeled images"):
        fit(FAST.replace(semi_weight=0.1), tiny_train, out_dir=tmp_path / "run", progress=False)


@pytest.mark.parametrize("where", ["argument", "folder"])
def test_unlabeled_images_are_read_from_disk(tmp_path: Path, tiny_train: TinyData, where: str) -> None:
    from PIL import Image

    paths = []
    for index in range(3):
        path = tmp_path / f"unlabeled{index}.png"
        Image.fromarray((tiny_train[index].image[..., 0] * 255).astype("uint8")).save(path)
        paths.append(path)
    if where == "folder":
        tiny_train.unlabeled_paths = paths  # what SegmentationFolder finds in DATA/unlabeled/
    config = FAST.replace(semi_weight=0.1, adversarial_weight=0.01)
    given = paths if where == "argument" else None
    record = fit(config, tiny_train, out_dir=tmp_path / "run", unlabeled=given, progress=False).history[0]
    assert "train_semi_loss" in record


def test_binary_task_needs_no_flag(tmp_path: Path) -> None:
    train, val = make_data(8, seed=0, num_classes=2), make_data(2, seed=1, num_classes=2)
    result = fit(FAST.replace(loss="ce+dice"), train, val, out_dir=tmp_path / "run", progress=False)
    assert "val_foreground_iou" in result.history[0]
    assert model_from_checkpoint(result.best_checkpoint)(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)


def test_iterations_per_epoch_cycles_a_small_training_set(tmp_path: Path, tiny_train: TinyData) -> None:
    history = fit(FAST.replace(iterations_per_epoch=3), tiny_train, out_dir=tmp_path / "run", progress=False).history
    assert history[0]["iteration"] == 3  # 8 images in batches of 4: two batches a pass, three asked for


def test_checkpoints_hold_the_raw_networks_and_the_model_options(
    tmp_path: Path, tiny_train: TinyData, tiny_val: TinyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelwise.train import trainer

    from .test_trainer import Wrapper

    # as under DDP: the training step calls wrapped networks whose own state_dict keys start with "module."
    monkeypatch.setattr(trainer, "wrap_for_training", Wrapper)
    config = FAST.replace(adversarial_weight=0.01, model_options={"width": 8})
    first = fit(config, tiny_train, tiny_val, out_dir=tmp_path / "run", progress=False)
    last = load_checkpoint(first.last_checkpoint)
    assert not any(key.startswith("module.") for key in last.state_dict)
    assert not any(key.startswith("module.") for key in last.extra["discriminator"]["state_dict"])
    assert (last.model, last.model_options) == ("unet-small", {"width": 8})
    model = model_from_checkpoint(first.best_checkpoint)  # predict rebuilds the same, narrower network
    assert model.spec["width"] == 8 and model.network.classifier.in_channels == 8  # type: ignore[union-attr]
    again = fit(config.replace(epochs=2), tiny_train, tiny_val, out_dir=tmp_path / "run", resume=True, progress=False)
    assert [record["epoch"] for record in again.history] == [1, 2]
