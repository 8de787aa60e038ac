"""What a comparison found, as records: what ``pixelwise.compare`` returns, the report reads and ``results.json`` holds.

``ComparisonResults.to_dict()`` is the content of ``results.json`` (``format: "pixelwise-compare/1"``; NaN
is written as null) and ``ComparisonResults.from_dict`` reads it back::

    format            "pixelwise-compare/1"
    created           ISO 8601 time of the run (UTC)
    dataset           {name, description, root, classes (ClassSpec.to_dict()), in_channels,
                       splits {train, val, test: number of images}, test_limit,
                       instances: test images whose truth has a label image of its objects (instances/
                       beside masks/); 0: no object scores}
    seed              seed of the noise (and of the split and the training)
    noise             [{key, name, kind: "gaussian" | "salt_pepper", amount}], "clean" first
    budget            the training options every CNN shared ({} without CNNs)
    settings          {train, dataset}: the training settings and dataset options the caller gave (--set,
                      --model-option, --data-option, --config, flags), as given; the report lists them
    versions          {pixelwise, python, numpy, scikit-image, torch, ...}
    torch_threads     torch's intra-op threads during the run (null without networks; classical methods: 1)
    total_seconds     wall time of the whole comparison
    methods           [{name, family, oracle (bool), description,
                        metrics        Scores.to_dict() on the clean test split (per_class, confusion_matrix...),
                        noise          {level key: {miou, mean_dice, pixel_accuracy, boundary_f1}},
                        ms_per_image   median prediction time per clean test image (predict only),
                        ms_per_image_mean,
                        train_seconds  time of fit (labeler fitting or network training),
                        train_images   training images fit used (0 for an oracle),
                        checkpoint     path of the trained model relative to the report folder, or null,
                        instances      InstanceScores.to_dict() of the objects found in the clean
                                       predictions (PQ, SQ, RQ, F1, AJI, counts), or null}]
    examples          [{stem, index, noise (level key), noise_name, image, truth,
                        predictions {method name: PNG path}}]; paths relative to the report folder

The records live here, beside their reader, because ``comparison`` (which fills them) imports ``report``
and not the other way round. Reading is lenient where the report can do without a value (a hand-made or
older file): a missing score is NaN, a missing count 0, a missing text empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pixelwise.data.classes import ClassSpec
from pixelwise.instances.scores import InstanceScores
from pixelwise.metrics import Scores, from_json_number, json_number, json_ready
from pixelwise.noise import NoiseLevel

FORMAT = "pixelwise-compare/1"
# the summary scores kept per noise level (the clean level keeps the whole Scores as well)
LEVEL_METRICS = ("miou", "mean_dice", "pixel_accuracy", "boundary_f1")


@dataclass(frozen=True, kw_only=True)
class LevelScores:
    """A method's summary scores at one noise level; NaN where nothing was scored."""

    miou: float = math.nan
    mean_dice: float = math.nan
    pixel_accuracy: float = math.nan
    boundary_f1: float = math.nan

    @classmethod
    def of(cls, scores: Scores) -> LevelScores:
        return cls(**{key: getattr(scores, key) for key in LEVEL_METRICS})

    def to_dict(self) -> dict[str, Any]:
        return {key: json_number(getattr(self, key)) for key in LEVEL_METRICS}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LevelScores:
        return cls(**{key: from_json_number(raw.get(key)) for key in LEVEL_METRICS})


@dataclass(frozen=True, kw_only=True)
class MethodResult:
    """One compared method: what it is, its clean scores, its scores under noise and its times.

    ``family``: ``classical``, ``cnn``, ``adversarial`` or ``oracle`` (an oracle saw the test truth: an upper
    bound, never a result). ``noise``: level key -> scores. Times in milliseconds per image and seconds of
    fitting; ``checkpoint``: the trained model's path relative to the report folder, or None.
    """

    name: str
    family: str
    oracle: bool = False
    description: str = ""
    metrics: Scores = field(default_factory=Scores)
    noise: Mapping[str, LevelScores] = field(default_factory=dict)
    ms_per_image: float = math.nan
    ms_per_image_mean: float = math.nan
    train_seconds: float = math.nan
    train_images: int | None = None  # None: the method did not say
    checkpoint: str | None = None
    instances: InstanceScores | None = None  # None: the test truth has no objects

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "oracle": self.oracle,
            "description": self.description,
            "metrics": self.metrics.to_dict(),
            "noise": {key: scores.to_dict() for key, scores in self.noise.items()},
            "ms_per_image": json_number(self.ms_per_image),
            "ms_per_image_mean": json_number(self.ms_per_image_mean),
            "train_seconds": json_number(self.train_seconds),
            "train_images": self.train_images,
            "checkpoint": self.checkpoint,
            "instances": self.instances.to_dict() if self.instances is not None else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MethodResult:
        return cls(
            name=str(raw["name"]),
            family=str(raw["family"]),
            oracle=bool(raw.get("oracle", False)),
            description=str(raw.get("description") or ""),
            metrics=Scores.from_dict(raw.get("metrics") or {}),
            noise={str(key): LevelScores.from_dict(scores) for key, scores in (raw.get("noise") or {}).items()},
            ms_per_image=from_json_number(raw.get("ms_per_image")),
            ms_per_image_mean=from_json_number(raw.get("ms_per_image_mean")),
            train_seconds=from_json_number(raw.get("train_seconds")),
            train_images=None if raw.get("train_images") is None else int(raw["train_images"]),
            checkpoint=None if raw.get("checkpoint") is None else str(raw["checkpoint"]),
            instances=InstanceScores.from_dict(raw["instances"]) if raw.get("instances") else None,
        )


@dataclass(frozen=True, kw_only=True)
class Example:
    """One test image shown in the report: its image and truth PNGs and each method's prediction PNG
    (``predictions``: method name -> path, filled as the methods predict); paths relative to the report."""

    stem: str
    index: int
    noise: str  # the level's key
    noise_name: str
    image: str
    truth: str
    predictions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stem": self.stem,
            "index": self.index,
            "noise": self.noise,
            "noise_name": self.noise_name,
            "image": self.image,
            "truth": self.truth,
            "predictions": dict(self.predictions),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Example:
        noise = str(raw.get("noise") or "clean")
        return cls(
            stem=str(raw["stem"]),
            index=int(raw.get("index") or 0),
            noise=noise,
            noise_name=str(raw.get("noise_name") or noise),
            image=str(raw["image"]),
            truth=str(raw["truth"]),
            predictions={str(name): str(path) for name, path in (raw.get("predictions") or {}).items()},
        )


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """The compared dataset: its name (a built-in's, or the folder's), classes, channels and split sizes."""

    name: str = ""
    description: str = ""
    root: str = ""
    classes: ClassSpec
    in_channels: int | None = None
    splits: Mapping[str, int] = field(default_factory=dict)
    test_limit: int | None = None
    instances: int = 0  # test images whose truth has a label image of its objects

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "root": self.root,
            "classes": self.classes.to_dict(),
            "in_channels": self.in_channels,
            "splits": dict(self.splits),
            "test_limit": self.test_limit,
            "instances": self.instances,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatasetSummary:
        return cls(
            name=str(raw.get("name") or ""),
            description=str(raw.get("description") or ""),
            root=str(raw.get("root") or ""),
            classes=ClassSpec.from_dict(raw["classes"], source="results dataset"),
            in_channels=None if raw.get("in_channels") is None else int(raw["in_channels"]),
            splits={str(split): int(count) for split, count in (raw.get("splits") or {}).items()},
            test_limit=None if raw.get("test_limit") is None else int(raw["test_limit"]),
            instances=int(raw.get("instances") or 0),
        )


@dataclass(frozen=True, kw_only=True)
class ComparisonResults:
    """Everything ``compare`` found (the schema above, field by field); ``to_dict()`` is ``results.json``."""

    format: str = FORMAT
    created: str = ""
    dataset: DatasetSummary
    seed: int | None = None
    noise: tuple[NoiseLevel, ...] = ()
    budget: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"train": {}, "dataset": {}})
    versions: Mapping[str, str] = field(default_factory=dict)
    torch_threads: int | None = None
    total_seconds: float = math.nan
    methods: tuple[MethodResult, ...] = ()
    examples: tuple[Example, ...] = ()

    def method(self, name: str) -> MethodResult:
        """The result of the method called ``name`` (a KeyError when none is)."""
        for method in self.methods:
            if method.name == name:
                return method
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``results.json``: strict JSON values (NaN as None), in the schema's order."""
        content = {
            "format": self.format,
            "created": self.created,
            "dataset": self.dataset.to_dict(),
            "seed": self.seed,
            "noise": [{"key": lv.key, "name": lv.name, "kind": lv.kind, "amount": lv.amount} for lv in self.noise],
            "budget": dict(self.budget),
            "settings": {part: dict(values) for part, values in self.settings.items()},
            "versions": dict(self.versions),
            "torch_threads": self.torch_threads,
            "total_seconds": json_number(self.total_seconds),
            "methods": [method.to_dict() for method in self.methods],
            "examples": [example.to_dict() for example in self.examples],
        }
        ready: dict[str, Any] = json_ready(content)
        return ready

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ComparisonResults:
        """Read ``results.json``'s content (``to_dict``'s, or a hand-made one with fewer entries)."""
        return cls(
            format=str(raw.get("format") or FORMAT),
            created=str(raw.get("created") or ""),
            dataset=DatasetSummary.from_dict(raw["dataset"]),
            seed=None if raw.get("seed") is None else int(raw["seed"]),
            noise=tuple(NoiseLevel(level["kind"], float(level["amount"])) for level in raw.get("noise") or ()),
            budget=dict(raw.get("budget") or {}),
            settings={**{"train": {}, "dataset": {}}, **(raw.get("settings") or {})},
            versions={str(name): str(version) for name, version in (raw.get("versions") or {}).items()},
            torch_threads=None if raw.get("torch_threads") is None else int(raw["torch_threads"]),
            total_seconds=from_json_number(raw.get("total_seconds")),
            methods=tuple(MethodResult.from_dict(method) for method in raw.get("methods") or ()),
            examples=tuple(Example.from_dict(example) for example in raw.get("examples") or ()),
        )
