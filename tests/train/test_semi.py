"""What the segmenter and D learn from unlabeled images (issue 14): unlabeled fakes, masked fakes, reals of
their own, the trusted-pixel rule, D's schedule, self-training, FixMatch and its CutMix, paired arms."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from pixelwise.adversarial.objectives import one_hot
from pixelwise.data.transforms import WeakStrongTransform, training_transform, weak_and_strong_transform
from pixelwise.train import trainer as trainer_module
from pixelwise.train.config import TrainConfig
from pixelwise.train.loop import fit
from pixelwise.train.semi import cutmix, cutmix_boxes, unlabeled_loss
from pixelwise.train.trainer import Trainer, build_trainer

from .conftest import TinyData, make_data

FAST = TrainConfig(epochs=1, batch_size=4, crop_size=16, lr=3e-3, patience=0, discriminator_base_channels=8)
IGNORE = 255


class Recorder(nn.Module):
    """Stands in for the training wrapper: calls the network and keeps a copy of every first input."""

    def __init__(self, module: nn.Module, example: torch.Tensor | None = None) -> None:
        super().__init__()
        self.module = module
        self.inputs: list[torch.Tensor] = []

    def forward(self, *inputs: Any) -> Any:
        self.inputs.append(inputs[0].detach().clone())
        return self.module(*inputs)


def batches(labeled: int = 2, unlabeled: int = 3, seed: int = 0) -> dict[str, Any]:
    """A labeled batch with ignored pixels, an unlabeled one with padding, and reals of their own."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, 3, (labeled, 16, 16), generator=generator)
    masks[:, :3] = IGNORE
    validity = torch.zeros(unlabeled, 16, 16, dtype=torch.long)
    validity[:, :, 12:] = IGNORE
    real_masks = torch.randint(0, 3, (labeled, 16, 16), generator=generator)
    real_masks[:, -2:] = IGNORE
    return {
        "images": torch.randn(labeled, 1, 16, 16, generator=generator),
        "masks": masks,
        "unlabeled": (torch.randn(unlabeled, 1, 16, 16, generator=generator), validity),
        "reals": (torch.randn(labeled, 1, 16, 16, generator=generator), real_masks),
    }


def recording_trainer(monkeypatch: pytest.MonkeyPatch, config: TrainConfig) -> Trainer:
    monkeypatch.setattr(trainer_module, "wrap_for_training", Recorder)
    trainer = build_trainer(config, classes=make_data(1, seed=0).classes, in_channels=1, total_iterations=10)
    return trainer


ADVERSARIAL_SEMI = FAST.replace(adversarial_weight=0.01, semi_weight=0.1, semi_threshold=0.0)


def test_unlabeled_predictions_are_fakes_in_d_s_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    data = batches(labeled=2, unlabeled=3)
    for unlabeled_fakes, fake_count in ((True, 5), (False, 2)):
        trainer = recording_trainer(
            monkeypatch, ADVERSARIAL_SEMI.replace(discriminator_unlabeled_fakes=unlabeled_fakes)
        )
        trainer.train_step(data["images"], data["masks"], data["unlabeled"], data["reals"])
        assert isinstance(trainer.discriminator, Recorder)
        # S's step: the labeled term (2), the unlabeled one (3); D's step: the reals (2), then the fakes
        assert [len(batch) for batch in trainer.discriminator.inputs] == [2, 3, 2, fake_count]
        if unlabeled_fakes:  # the fakes are the predictions S's step made: labeled first, then unlabeled
            shown = trainer.discriminator.inputs
            assert torch.equal(shown[3][:2], shown[0]) and torch.equal(shown[3][2:], shown[1])


def test_d_sees_fakes_zeroed_where_the_reals_are_and_reals_from_their_own_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = batches()
    trainer = recording_trainer(monkeypatch, ADVERSARIAL_SEMI)
    trainer.train_step(data["images"], data["masks"], data["unlabeled"], data["reals"])
    assert isinstance(trainer.discriminator, Recorder)
    labeled_fake, unlabeled_fake, real, fakes = trainer.discriminator.inputs
    assert torch.equal(real, one_hot(data["reals"][1], 3)[0])  # the reals' own masks, not the labeled batch's
    for shown, invalid in (
        (labeled_fake, data["masks"] == IGNORE),
        (unlabeled_fake, data["unlabeled"][1] == IGNORE),
        (fakes, torch.cat([data["masks"], data["unlabeled"][1]]) == IGNORE),
    ):
        total = shown.sum(dim=1)
        assert torch.equal(total == 0, invalid)  # zero exactly where a real map would be
        assert torch.allclose(total[~invalid], torch.ones(()))

    # switched off: the softmax sums to one at padding and ignored pixels too, a cue D could use
    trainer = recording_trainer(monkeypatch, ADVERSARIAL_SEMI.replace(discriminator_masked_fakes=False))
    trainer.train_step(data["images"], data["masks"], data["unlabeled"], data["reals"])
    assert isinstance(trainer.discriminator, Recorder)
    assert all(torch.allclose(shown.sum(dim=1), torch.ones(())) for shown in trainer.discriminator.inputs[:2])


class Verdict(nn.Module):
    """A D that says the same logit everywhere (and still passes a gradient to the prediction)."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = logit

    def forward(self, probabilities: torch.Tensor, *image: torch.Tensor) -> torch.Tensor:
        return probabilities[:, :1] * 0.0 + self.logit


def test_nothing_is_learnt_from_an_unlabeled_batch_without_a_trusted_pixel(tiny_train: TinyData) -> None:
    data = batches()
    config = FAST.replace(adversarial_weight=0.01, semi_weight=0.1, semi_threshold=0.2)
    trainer = build_trainer(config, classes=tiny_train.classes, in_channels=1, total_iterations=10)
    trainer.discriminator = Verdict(-20.0)  # σ ≈ 0 everywhere: no pixel passes T_semi
    loss, stats, _ = unlabeled_loss(trainer.networks(), data["unlabeled"])
    assert stats["semi_fraction"] == 0.0 and "unlabeled_adversarial_loss" not in stats and loss.item() == 0.0
    trainer.discriminator = Verdict(20.0)  # every valid pixel trusted: both terms count
    loss, stats, _ = unlabeled_loss(trainer.networks(), data["unlabeled"])
    assert stats["semi_fraction"] == 1.0 and stats["unlabeled_adversarial_loss"] > 0 and loss.item() > 0
    # before semi_start the unlabeled adversarial term runs alone, as in the official code
    trainer.config = config.replace(semi_start=5)
    trainer.discriminator = Verdict(-20.0)
    _, stats, _ = unlabeled_loss(trainer.networks(), data["unlabeled"])
    assert "semi_loss" not in stats and stats["unlabeled_adversarial_loss"] > 0


def test_d_s_schedule_skips_the_segmenter_s_warm_up(tiny_train: TinyData) -> None:
    config = FAST.replace(adversarial_weight=0.01, warmup_iterations=10, lr=1e-2, discriminator_lr=1e-3)
    trainer = build_trainer(config, classes=tiny_train.classes, in_channels=1, total_iterations=100)
    assert trainer.discriminator_optimizer is not None
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # S starts at a tenth
    assert trainer.discriminator_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # D at its full rate


def test_self_training_trusts_the_softmax_and_needs_no_discriminator(tiny_train: TinyData) -> None:
    config = FAST.replace(semi_weight=0.1, semi_trust="softmax", semi_threshold=0.0)
    assert not config.uses_discriminator and config.uses_unlabeled
    trainer = build_trainer(config, classes=tiny_train.classes, in_channels=1, total_iterations=10)
    data = batches()
    stats = trainer.train_step(data["images"], data["masks"], data["unlabeled"])
    assert trainer.discriminator is None
    assert stats["semi_fraction"] == 1.0 and stats["semi_loss"] > 0  # every real pixel, no padding
    trainer.config = config.replace(semi_threshold=0.999)  # an untrained network is sure of nothing
    assert trainer.train_step(data["images"], data["masks"], data["unlabeled"])["semi_fraction"] == 0.0


def test_cutmix_mixes_images_labels_and_validity_alike() -> None:
    count = 6
    images = torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1).expand(count, 3, 20, 20)
    labels = torch.arange(count).view(count, 1, 1).expand(count, 20, 20)
    valid = torch.ones(count, 20, 20, dtype=torch.bool)
    valid[1] = False
    boxes = cutmix_boxes(count, (20, 20), generator=torch.Generator().manual_seed(3), probability=1.0)
    mixed_images, mixed_labels, mixed_valid = cutmix(boxes, images, labels, valid)
    assert torch.equal(mixed_images[:, 0], mixed_labels.float()) and torch.equal(mixed_images[:, 1], mixed_images[:, 2])
    for index in range(count):
        inside = boxes[index]
        assert (mixed_labels[index][inside] == (index - 1) % count).all()
        assert (mixed_labels[index][~inside] == index).all()
    assert not mixed_valid[1][~boxes[1]].any() and not mixed_valid[2][boxes[2]].any()  # image 1's pixels, moved


def test_cutmix_boxes_follow_unimatch_s_settings() -> None:
    boxes = cutmix_boxes(400, (40, 50), generator=torch.Generator().manual_seed(0))
    areas = boxes.flatten(1).float().mean(dim=1)
    boxed = areas > 0
    assert 0.4 < boxed.float().mean() < 0.6  # probability 0.5
    assert areas[boxed].min() >= 0.015 and areas[boxed].max() <= 0.45  # 2–40% of the image, rounded
    again = cutmix_boxes(400, (40, 50), generator=torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)


def test_fixmatch_teaches_the_mixed_strong_view_with_the_weak_view_s_confident_argmax(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = FAST.replace(fixmatch_weight=1.0, fixmatch_threshold=0.0)
    trainer = recording_trainer(monkeypatch, config)
    assert trainer.discriminator is None and isinstance(trainer.model, Recorder)
    weak, validity = batches(unlabeled=4)["unlabeled"]
    strong = weak + 5.0  # recognisably another view
    loss, stats, _ = unlabeled_loss(trainer.networks(), (weak, validity, strong))
    first, second = trainer.model.inputs
    assert torch.equal(first, weak)  # the weak view gives the pseudo-labels (without a gradient) ...
    assert (second >= 2.0).all() and second.shape == strong.shape  # ... the strong one, mixed, learns
    assert loss.requires_grad and stats["fixmatch_fraction"] == 1.0  # threshold 0: every valid pixel teaches
    trainer.config = config.replace(fixmatch_threshold=0.999)
    loss, stats, _ = unlabeled_loss(trainer.networks(), (weak, validity, strong))
    assert stats["fixmatch_fraction"] == 0.0 and loss.item() == 0.0
    with pytest.raises(ValueError, match="strong view"):
        unlabeled_loss(trainer.networks(), (weak, validity))


def test_the_strong_view_is_the_weak_crop_recoloured() -> None:
    import numpy as np

    image = np.random.default_rng(0).random((20, 24, 1), dtype=np.float32)
    settings: dict[str, Any] = {"crop_size": 16, "mean": (0.5,), "std": (0.25,), "rotation": 30.0}
    transform = weak_and_strong_transform(**settings)
    same_geometry = WeakStrongTransform(transform.geometric, v2.Identity(), transform.normalize)
    torch.manual_seed(4)
    weak, validity, strong = same_geometry(image, None)
    assert torch.equal(weak, strong)  # one crop, one rotation, one flip: the views align pixel for pixel
    torch.manual_seed(4)
    plain_image, plain_validity = training_transform(**settings)(image, None)
    assert torch.equal(plain_image, weak) and torch.equal(plain_validity, validity)  # the weak view = training's
    differs = 0
    for seed in range(5):
        torch.manual_seed(seed)
        weak, validity, strong = transform(image, None)
        differs += int(not torch.allclose(weak, strong))
    assert differs >= 3  # jitter (p 0.8) or blur (p 0.5) almost always change it


def test_arms_of_one_seed_see_the_same_labeled_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    train = make_data(16, seed=0)
    config = FAST.replace(epochs=2, labeled_fraction=0.5)
    seen: dict[str, list[tuple[torch.Tensor, ...]]] = {}
    original = Trainer.train_step
    arms = {
        "supervised": {},
        "adversarial+semi": {"adversarial_weight": 0.01, "semi_weight": 0.1, "discriminator_real_smoothing": 0.3},
        "fixmatch": {"fixmatch_weight": 1.0},
    }
    for name, settings in arms.items():
        calls: list[tuple[torch.Tensor, ...]] = []

        def record(self: Trainer, images: torch.Tensor, masks: torch.Tensor, *rest: Any, log: Any = calls) -> Any:
            reals = rest[1] if len(rest) > 1 else None
            log.append((images.clone(), masks.clone(), *(() if reals is None else (reals[1].clone(),))))
            return original(self, images, masks, *rest)

        monkeypatch.setattr(Trainer, "train_step", record)
        with tempfile.TemporaryDirectory() as folder:
            fit(config.replace(**settings), train, None, out_dir=folder, progress=False)
        seen[name] = calls
    for name in ("adversarial+semi", "fixmatch"):
        assert len(seen[name]) == len(seen["supervised"]) == 4
        for ours, theirs in zip(seen[name], seen["supervised"], strict=True):
            assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    # D's reals: a labeled batch of their own
    assert all(len(call) == 3 and not torch.equal(call[1], call[2]) for call in seen["adversarial+semi"])


def test_train_fixmatch_from_the_command_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from .test_cli_train import TINY, run

    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    flags = ["--fixmatch-weight", "1", "--fixmatch-threshold", "0.5", "--labeled-fraction", "0.5", "--epochs", "2"]
    code, stdout, _ = run([*TINY, "--out", str(out), *flags, "-q"], monkeypatch, capsys)
    assert code == 0, stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"train_fixmatch_loss", "train_fixmatch_fraction", "pseudo_auroc_softmax"} <= records[-1].keys()
    assert "pseudo_auroc_discriminator" not in records[-1]  # one network, no D
    code, _, err = run([*TINY, "--out", str(tmp_path / "bad"), "--fixmatch-weight", "1", "-q"], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "fixmatch_weight > 0 needs unlabeled images" in err


def test_a_resumed_fixmatch_run_repeats_the_straight_one(
    tmp_path: Any, tiny_train: TinyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CutMix's boxes and the strong views come from streams keyed by the iteration, so a resume draws the same
    from pixelwise.checkpoint import load_checkpoint
    from pixelwise.train import loop

    config = FAST.replace(epochs=2, fixmatch_weight=1.0, fixmatch_threshold=0.3, labeled_fraction=0.5)
    straight = fit(config, tiny_train, out_dir=tmp_path / "straight", progress=False)
    real_train_epoch = loop._train_epoch
    begun: list[int] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        begun.append(args[3])
        if len(begun) == 2:
            raise KeyboardInterrupt
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(loop, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tiny_train, out_dir=tmp_path / "resumed", progress=False)
    monkeypatch.setattr(loop, "_train_epoch", real_train_epoch)
    resumed = fit(config, tiny_train, out_dir=tmp_path / "resumed", resume=True, progress=False)
    first, second = (load_checkpoint(run.last_checkpoint).state_dict for run in (straight, resumed))
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert straight.history[-1]["train_fixmatch_loss"] == resumed.history[-1]["train_fixmatch_loss"]


def test_resuming_with_a_discriminator_of_other_strides_is_refused(tmp_path: Any, tiny_train: TinyData) -> None:
    from pixelwise.errors import PixelwiseError

    config = FAST.replace(adversarial_weight=0.01)  # 16² crops: one stride-2 layer keeps 8×8 logits
    fit(config, tiny_train, out_dir=tmp_path, progress=False)
    with pytest.raises(PixelwiseError, match="has 1 stride-2 layers, this config's 5"):
        fit(config.replace(discriminator_min_map=0), tiny_train, out_dir=tmp_path, resume=True, progress=False)
