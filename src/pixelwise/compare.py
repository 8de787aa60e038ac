"""Run classical, CNN and adversarial segmentation side by side on one test split, clean and with noise.

A *method* is a small uniform thing (``Method``): a name, a family (``classical``, ``cnn``, ``adversarial`` or
``oracle``), ``fit(train, val, out_dir)`` and ``predict(image) -> (H, W) labels``. ``compare`` fits each
method on the training split, predicts every test image clean and at every noise level of the sweep (the same
seeded noisy images for every method), scores with ``pixelwise.metrics.Evaluator``, saves a few examples,
writes ``results.json`` and, through ``pixelwise.report``, the report.

``results.json`` (``format: "pixelwise-compare/1"``; NaN is written as null)::

    format            "pixelwise-compare/1"
    created           ISO 8601 time of the run (UTC)
    dataset           {name, description, root, classes (ClassSpec.to_dict()), in_channels,
                       splits {train, val, test: number of images}, test_limit}
    seed              seed of the noise (and of the split and the training)
    noise             [{key, name, kind: "gaussian" | "salt_pepper", amount}], "clean" first
    budget            the training options every CNN shared ({} without CNNs)
    versions          {pixelwise, python, numpy, scikit-image, torch, ...}
    torch_threads     torch's intra-op threads during the run (null without networks; classical methods: 1)
    total_seconds     wall time of the whole comparison
    methods           [{name, family, oracle (bool), description,
                        metrics        Evaluator.result() on the clean test split (per_class, confusion_matrix...),
                        noise          {level key: {miou, mean_dice, pixel_accuracy, boundary_f1}},
                        ms_per_image   median prediction time per clean test image (predict only),
                        ms_per_image_mean,
                        train_seconds  time of fit (labeler fitting or network training),
                        train_images   training images fit used (0 for an oracle),
                        checkpoint     path of the trained model relative to the report folder, or null}]
    examples          [{stem, index, noise (level key), noise_name, image, truth,
                        predictions {method name: PNG path}}]; paths relative to the report folder

Oracle methods label a classical partition with the *test* truth: ``oracle`` is true for them, their family is
``"oracle"`` and their name is ``classical.oracle_name(method)`` (``otsu-oracle``; a ``Method`` of family
``"oracle"`` must end its name in ``-oracle`` too), so no reader can take them for honest results.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pixelwise.classical.labeling import ORACLE_SUFFIX, oracle_name
from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_path
from pixelwise.noise import NoiseLevel, apply_noise, noise_sweep

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.folder import SegmentationFolder

Family = Literal["classical", "cnn", "adversarial", "oracle"]
FORMAT = "pixelwise-compare/1"
NETWORK_METHODS = ("cnn", "adversarial", "semi")
# summary scores kept per noise level (the clean level keeps the whole Evaluator result as well)
LEVEL_METRICS = ("miou", "mean_dice", "pixel_accuracy", "boundary_f1")


# ------------------------------------------------------------------------------------------------ methods


class Method:
    """One way of segmenting: fit on the training split, then predict class labels for one image.

    ``predict(image, truth)``: image (H, W, C) float32 in [0, 1] -> (H, W) integer class labels. ``truth``
    is passed only to oracle methods (``family == "oracle"``); every other method gets None.
    """

    name: str
    family: Family
    description: str
    checkpoint: Path | None = None
    train_images: int | None = None  # how many training images fit used (set by fit)

    @property
    def oracle(self) -> bool:
        return self.family == "oracle"

    def running(self) -> contextlib.AbstractContextManager[Any]:
        """A context around this method's fit and predictions (thread limits, devices...); none by default."""
        return contextlib.nullcontext()

    def fit(self, train: SegmentationFolder, val: SegmentationFolder | None, out_dir: Path) -> None:
        raise NotImplementedError

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


class ClassicalMethod(Method):
    """A classical partition (``pixelwise.classical.METHODS``) named by the fitted labeler, or by the oracle."""

    def __init__(
        self, method: str, *, options: dict[str, Any] | None = None, oracle: bool = False, fit_images: int | None = None
    ) -> None:
        from pixelwise.classical import ClassicalSegmenter

        self.method = method
        self.fit_images = fit_images
        self.options = dict(options or {})
        self.name = oracle_name(method) if oracle else method
        self.family = "oracle" if oracle else "classical"
        labeler = "the test truth (oracle upper bound)" if oracle else "a labeler fitted on the training split"
        self.description = f"{method} regions, classes from {labeler}"
        # built here, not in fit, so that an unknown option fails before any network trains
        self._segmenter = ClassicalSegmenter(method, self.options, labeler="oracle" if oracle else "fitted")
        self._fitted = False

    def running(self) -> contextlib.AbstractContextManager[Any]:
        """OpenMP and BLAS limited to one thread while this method fits and predicts.

        One small image at a time gains nothing from threads: scikit-learn's k-means took 330–830 ms per
        64×64 image with two (busy) cores' threads spinning, 11–31 ms with one. The limit is set once around
        the whole run, because setting it costs about 8 ms, more than a threshold takes.
        """
        # the limit reaches only runtimes already loaded: load scikit-learn's OpenMP (k-means uses it) first
        import sklearn.cluster  # noqa: F401
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1)

    def fit(self, train: SegmentationFolder, val: SegmentationFolder | None, out_dir: Path) -> None:
        """Fit the labeler on the training split, or on ``fit_images`` of its images spread evenly over it.

        A labeler learns a handful of numbers per class (a colour or a bin per class), which a few hundred
        images pin down as well as thousands; the rest would only cost time.
        """
        if self.oracle:
            self._segmenter.fit(train)  # remembers the classes; the oracle learns nothing
            self.train_images = 0
        elif self.fit_images is None or self.fit_images >= len(train):
            self._segmenter.fit(train)
            self.train_images = len(train)
        else:
            chosen = np.linspace(0, len(train) - 1, self.fit_images).round().astype(int)
            self._segmenter.fit((train[int(index)] for index in chosen), classes=train.classes)
            self.train_images = len(chosen)
        self._fitted = True

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        if not self._fitted:
            raise RuntimeError(f"{self.name}: call fit before predict")
        if self.oracle:
            return np.asarray(self._segmenter.predict(image, truth=truth))
        return np.asarray(self._segmenter.predict(image))


class NetworkMethod(Method):
    """A CNN trained by ``pixelwise.train.loop.fit``; its best checkpoint stays in the report folder."""

    def __init__(self, name: str, *, family: Family, config: Any, description: str, semi: bool = False) -> None:
        self.name = name
        self.family = family
        self.config = config
        self.description = description
        self.semi = semi
        self.progress = True
        self._predictor: Any = None

    def fit(self, train: SegmentationFolder, val: SegmentationFolder | None, out_dir: Path) -> None:
        from pixelwise.inference.predictor import Predictor
        from pixelwise.train.loop import fit

        if self.semi and not train.unlabeled_paths and self.config.labeled_fraction >= 1:
            raise PixelwiseError(
                f"{train.root}: method 'semi' needs unlabeled images; put them in {train.root / 'unlabeled'} "
                "or hide labels with --set labeled_fraction=0.25 (every CNN then trains on those labels only)"
            )
        # the loop adds the dataset's unlabeled/ images itself; force: a rerun into the same report replaces it
        run = fit(self.config, train, val, out_dir=out_dir, force=True, progress=self.progress)
        self.checkpoint = Path(run.best_checkpoint)
        self.train_images = len(train)
        self._predictor = Predictor.load(self.checkpoint)

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        if self._predictor is None:
            raise RuntimeError(f"{self.name}: call fit before predict")
        return np.asarray(self._predictor.predict_labels(image))


def classical_names() -> list[str]:
    """The classical methods available, in the order ``pixelwise.classical.METHODS`` lists them."""
    from pixelwise.classical import METHODS

    return list(METHODS)


def default_method_names(*, oracle: bool = False) -> list[str]:
    """Every classical method with the fitted labeler, a CNN and the CNN trained adversarially.

    With ``oracle=True`` the oracle variants of the classical methods are added at the end.
    """
    names = [*classical_names(), "cnn", "adversarial"]
    if oracle:
        names += [oracle_name(name) for name in classical_names()]
    return names


def build_methods(
    names: Sequence[str | Method],
    *,
    train_options: dict[str, Any] | None = None,
    classical_options: dict[str, dict[str, Any]] | None = None,
    classical_fit_images: int | None = None,
) -> list[Method]:
    """Methods from their names: a classical name, ``<classical>-oracle``, ``cnn``, ``adversarial`` or ``semi``.

    ``Method`` instances (your own methods) pass through unchanged. ``train_options`` override
    ``TrainConfig`` fields for every network (epochs, model, encoder...); ``adversarial`` uses the config's
    adversarial weight, or the published 0.01 where it is 0. ``classical_options``: per classical method,
    its options; ``classical_fit_images``: fit the labelers on that many training images (None: all).
    """
    wanted = [name for name in names if isinstance(name, str)]
    known = classical_names() if wanted else []
    choices = [*known, *(oracle_name(name) for name in known), *NETWORK_METHODS]
    unknown = [name for name in wanted if name not in choices]
    if unknown:
        raise PixelwiseError(f"unknown method {', '.join(map(repr, unknown))}; choose from {', '.join(choices)}")
    methods: list[Method] = []
    for name in names:
        if isinstance(name, Method):
            methods.append(name)
        elif name in NETWORK_METHODS:
            methods.append(_network_method(name, train_options or {}))
        else:
            base = name.removesuffix(ORACLE_SUFFIX)
            options = (classical_options or {}).get(base, {})
            oracle = name.endswith(ORACLE_SUFFIX)
            methods.append(ClassicalMethod(base, options=options, oracle=oracle, fit_images=classical_fit_images))
    misnamed = [method.name for method in methods if method.oracle and not method.name.endswith(ORACLE_SUFFIX)]
    if misnamed:
        raise PixelwiseError(
            f"method {misnamed[0]!r} is an oracle (family 'oracle'); end its name in {ORACLE_SUFFIX!r} so that "
            "no reader takes it for a result"
        )
    seen = [method.name for method in methods]
    repeated = sorted({name for name in seen if seen.count(name) > 1})
    if repeated:
        raise PixelwiseError(f"method {', '.join(repeated)} is listed twice; list each method once")
    return methods


def _network_method(name: str, train_options: dict[str, Any]) -> NetworkMethod:
    from pixelwise.train.config import TrainConfig

    config = TrainConfig().replace(**train_options)  # unknown or bad settings: PixelwiseError naming them
    adversarial_weight = getattr(config, "adversarial_weight", 0.0) or 0.01
    if name == "cnn":
        config = config.replace(adversarial_weight=0.0, semi_weight=0.0)
        description = f"{config.model} trained with cross-entropy only"
        return NetworkMethod(name, family="cnn", config=config, description=description)
    if name == "adversarial":
        config = config.replace(adversarial_weight=adversarial_weight, semi_weight=0.0)
        description = f"{config.model} trained with cross-entropy + {adversarial_weight:g} × adversarial loss"
        return NetworkMethod(name, family="adversarial", config=config, description=description)
    semi_weight = getattr(config, "semi_weight", 0.0) or 0.1
    config = config.replace(adversarial_weight=adversarial_weight, semi_weight=semi_weight)
    description = f"{config.model}, adversarial + semi-supervised on the unlabeled images (λ_semi {semi_weight:g})"
    return NetworkMethod(name, family="adversarial", config=config, description=description, semi=True)


# ---------------------------------------------------------------------------------------------- comparing


@dataclass
class _TestSet:
    """The test samples, read once when they fit in memory (every method and noise level reads them again)."""

    folder: SegmentationFolder
    limit: int
    cached: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return self.limit

    def __getitem__(self, index: int) -> Any:
        return self.cached[index] if self.cached else self.folder[index]

    def cache_if_small(self, budget_bytes: int = 512 * 2**20) -> None:
        first = self.folder[0]
        per_sample = first.image.nbytes + _truth(first).nbytes
        if per_sample * self.limit <= budget_bytes:
            self.cached = [self.folder[index] for index in range(self.limit)]


def compare(
    data: str | os.PathLike[str],
    *,
    methods: Sequence[str | Method] | None = None,
    out_dir: str | os.PathLike[str],
    noise: Sequence[NoiseLevel] | None = None,
    train_options: dict[str, Any] | None = None,
    classical_options: dict[str, dict[str, Any]] | None = None,
    classical_fit_images: int | None = None,
    dataset_options: dict[str, Any] | None = None,
    seed: int = 0,
    test_limit: int | None = None,
    num_examples: int = 3,
    boundary_tolerance: float = 2.0,
    progress: bool = True,
    report: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit, predict and score every method on ``data``'s test split; write ``results.json`` and the report.

    data: a dataset folder or a built-in name (``dataset_options`` go to the built-in's exporter).
    methods: names for ``build_methods`` (or ``Method`` instances); None means ``default_method_names()``.
    noise: the sweep (``pixelwise.noise.noise_sweep()`` when None); the clean level is always scored.
    test_limit: score only the first N test images (None: all).
    Returns the content of ``results.json`` (schema in the module docstring).
    """
    from pixelwise.data.builtin import dataset_root, list_builtin
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.splits import available_splits
    from pixelwise.metrics import Evaluator, json_ready

    say = log or (lambda message: None)
    started = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PixelwiseError(f"{out}: exists and is not a folder; give another --out")
    chosen = build_methods(
        list(methods) if methods is not None else default_method_names(),
        train_options={"seed": seed, **(train_options or {})},
        classical_options=classical_options,
        classical_fit_images=classical_fit_images,
    )
    levels = _levels(noise)
    if test_limit is not None and test_limit < 1:
        raise PixelwiseError(f"test limit {test_limit}: give at least 1 (or no limit)")

    root = dataset_root(str(data), **(dataset_options or {}))
    train = SegmentationFolder(root, split="train", seed=seed)
    # a train/ test/ layout may have no val/: the networks then keep the checkpoint of the lowest training loss
    has_val = "val" in available_splits(root)
    val = SegmentationFolder(root, split="val", seed=seed) if has_val else None
    test_folder = SegmentationFolder(root, split="test", seed=seed)
    _check_test_split(test_folder, root)
    if len(train) == 0:
        raise PixelwiseError(f"{root}: the training split is empty; add labelled images so methods can be fitted")
    test = _TestSet(test_folder, min(len(test_folder), test_limit or len(test_folder)))
    test.cache_if_small()
    classes = test_folder.classes
    builtin = list_builtin()
    name = str(data) if str(data) in builtin else Path(root).name
    say(
        f"dataset {name}: {len(train)} train, {len(val or [])} val, {test.limit} test images, "
        f"{classes.num_classes} classes; {len(chosen)} methods × {len(levels)} noise levels"
    )

    example_plan = _example_plan(levels, test.limit, num_examples)
    examples = _save_example_inputs(example_plan, test, levels, classes, out, seed)
    records = []
    for method in chosen:
        say(f"{method.name}: fitting ({method.description})")
        if isinstance(method, NetworkMethod):
            method.progress = progress
        with method.running():
            fit_started = time.perf_counter()
            method.fit(train, val if val else None, out / "models" / _file_name(method.name))
            train_seconds = time.perf_counter() - fit_started
            clean_metrics, per_level, timings = _score(
                method,
                test,
                levels,
                evaluator=lambda: Evaluator(classes, boundary_tolerance=boundary_tolerance),
                seed=seed,
                save_example=partial(_save_example_prediction, examples, example_plan, method.name, classes, out),
                progress=progress,
            )
        records.append(
            {
                "name": method.name,
                "family": method.family,
                "oracle": method.oracle,
                "description": method.description,
                "metrics": clean_metrics,
                "noise": per_level,
                "ms_per_image": 1000 * statistics.median(timings),
                "ms_per_image_mean": 1000 * statistics.fmean(timings),
                "train_seconds": train_seconds,
                "train_images": method.train_images,
                "checkpoint": _relative(method.checkpoint, out) if method.checkpoint else None,
            }
        )
        say(f"{method.name}: mIoU {_format(clean_metrics['miou'])} clean, fitted in {train_seconds:.1f} s")

    networks = [method for method in chosen if isinstance(method, NetworkMethod)]
    results: dict[str, Any] = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": {
            "name": name,
            "description": builtin.get(str(data), ""),
            "root": str(root),
            "classes": classes.to_dict(),
            "in_channels": test_folder.in_channels,
            "splits": {"train": len(train), "val": len(val or []), "test": len(test_folder)},
            "test_limit": test.limit,
        },
        "seed": seed,
        "noise": [{"key": lv.key, "name": lv.name, "kind": lv.kind, "amount": lv.amount} for lv in levels],
        "budget": _budget(networks[0].config) if networks else {},
        "versions": versions(torch=bool(networks)),
        "torch_threads": _torch_threads() if networks else None,
        "total_seconds": time.perf_counter() - started,
        "methods": records,
        "examples": examples,
    }
    results = json_ready(results)
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if report:
        from pixelwise.report import write_report

        write_report(results, out)
    return results


def _score(
    method: Method,
    test: _TestSet,
    levels: Sequence[NoiseLevel],
    *,
    evaluator: Callable[[], Any],
    seed: int,
    save_example: Callable[[str, int, np.ndarray], None],
    progress: bool,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[float]]:
    """Predict every test image at every noise level: (clean Evaluator result, summary per level, clean
    prediction times in seconds)."""
    from tqdm.auto import tqdm

    # one untimed call first: lazy initialisation (thread pools, caches) is not prediction time
    warm = test[0]
    method.predict(warm.image, _truth(warm) if method.oracle else None)
    timings: list[float] = []
    per_level: dict[str, dict[str, Any]] = {}
    clean: dict[str, Any] = {}
    with tqdm(total=len(levels) * len(test), desc=f"{method.name:>16}", unit="img", disable=not progress) as bar:
        for level_index, level in enumerate(levels):
            scores = evaluator()
            for index in range(len(test)):
                sample = test[index]
                truth = _truth(sample)
                image = apply_noise(sample.image, level, seed=seed, index=index)
                started = time.perf_counter()
                labels = method.predict(image, truth if method.oracle else None)
                if level_index == 0:
                    timings.append(time.perf_counter() - started)
                scores.add(labels, truth, name=f"{method.name} on {sample.stem}")
                save_example(level.key, index, labels)
                bar.update(1)
            result = scores.result()
            per_level[level.key] = {key: result[key] for key in LEVEL_METRICS}
            if level_index == 0:
                clean = result
    return clean, per_level, timings


def _levels(noise: Sequence[NoiseLevel] | None) -> list[NoiseLevel]:
    """The sweep with the clean level first, exactly once."""
    levels = list(noise) if noise is not None else noise_sweep()
    clean = NoiseLevel("gaussian", 0.0)
    return [clean, *(level for level in dict.fromkeys(levels) if level.amount > 0)]


def _check_test_split(test: SegmentationFolder, root: Path) -> None:
    """Fail before any method is fitted: an empty test split, or masks whose size differs from the image."""
    if len(test) == 0:
        raise PixelwiseError(
            f"{root}: the test split is empty (too few images to split off a test set); "
            "add images with masks, or a test/ folder with images/ and masks/"
        )
    test.check()


def _truth(sample: Any) -> np.ndarray:
    if sample.mask is None:
        raise PixelwiseError(f"{sample.image_path}: test image without a mask; compare needs the test masks")
    return np.asarray(sample.mask)


def _example_plan(levels: Sequence[NoiseLevel], count: int, num_examples: int) -> set[tuple[str, int]]:
    """(level key, image index) of the examples: the first images clean, the first one at the worst noise."""
    plan = {("clean", index) for index in range(min(num_examples, count))}
    if num_examples > 0 and count > 0:
        for kind in ("gaussian", "salt_pepper"):
            noisy = [level for level in levels if level.kind == kind and level.amount > 0]
            if noisy:
                plan.add((max(noisy, key=lambda level: level.amount).key, 0))
    return plan


def _save_example_inputs(
    plan: set[tuple[str, int]],
    test: _TestSet,
    levels: Sequence[NoiseLevel],
    classes: ClassSpec,
    out: Path,
    seed: int,
) -> list[dict[str, Any]]:
    """Write each planned example's (noisy) image and truth as PNG; return the entries of ``examples``."""
    from PIL import Image

    from pixelwise.data.io import write_mask

    by_key = {level.key: level for level in levels}
    entries = []
    # clean rows first, then the noisy ones in sweep order
    order = [level.key for level in levels]
    for key, index in sorted(plan, key=lambda item: (order.index(item[0]), item[1])):
        sample = test[index]
        image = apply_noise(sample.image, by_key[key], seed=seed, index=index)
        prefix = f"examples/{index:03d}-{_file_name(sample.stem)}-{key}"
        pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
        pixels = pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3]
        with atomic_path(out / f"{prefix}-image.png") as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        write_mask(out / f"{prefix}-truth.png", _truth(sample), classes)
        entries.append(
            {
                "stem": sample.stem,
                "index": index,
                "noise": key,
                "noise_name": by_key[key].name,
                "image": f"{prefix}-image.png",
                "truth": f"{prefix}-truth.png",
                "predictions": {},
            }
        )
    return entries


def _save_example_prediction(
    examples: list[dict[str, Any]],
    plan: set[tuple[str, int]],
    method: str,
    classes: ClassSpec,
    out: Path,
    key: str,
    index: int,
    labels: np.ndarray,
) -> None:
    """Save ``labels`` as a palette PNG when (level ``key``, image ``index``) is one of the examples."""
    from pixelwise.data.io import write_mask

    if (key, index) not in plan:
        return
    for entry in examples:
        if entry["noise"] == key and entry["index"] == index:
            path = entry["image"].removesuffix("-image.png") + f"-{_file_name(method)}.png"
            write_mask(out / path, np.asarray(labels).astype(np.uint8), classes)
            entry["predictions"][method] = path


def _file_name(text: str) -> str:
    """A name safe in any file system: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _budget(config: Any) -> dict[str, Any]:
    """The training settings every network shared (the per-method weights are in each description)."""
    per_method = {"adversarial_weight", "semi_weight"}
    return {key: value for key, value in config.to_dict().items() if key not in per_method}


def versions(*, torch: bool) -> dict[str, str]:
    """Versions of Python and the libraries that shape the numbers (read from metadata: nothing imported)."""
    found = {"pixelwise": _version("pixelwise"), "python": platform.python_version()}
    names: Iterable[str] = ("numpy", "scikit-image", "scikit-learn", "scipy")
    if torch:
        names = (*names, "torch", "torchvision", "segmentation-models-pytorch", "timm")
    for name in names:
        found[name] = _version(name)
    return found


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _format(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
