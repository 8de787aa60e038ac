"""The methods a comparison runs: a new compared method is a ``Method`` subclass here (or your own, passed in).

A *method* is a small uniform thing: a name, a family (``classical``, ``cnn``, ``adversarial`` or
``oracle``), ``fit(train, val, out_dir)`` and ``predict(image) -> (H, W) labels``. ``build_methods`` makes
them from names: a classical name, its oracle bound ``<classical>-oracle``, ``cnn``, ``adversarial``, ``semi``
(adversarial + semi-supervised, Hung et al.), ``fixmatch`` or ``self-training`` (semi-supervised CNNs
without a discriminator).

Oracle methods label a classical partition with the *test* truth: ``oracle`` is true for them, their family is
``"oracle"`` and their name is ``classical.oracle_name(method)`` (``otsu-oracle``; a ``Method`` of family
``"oracle"`` must end its name in ``-oracle`` too), so no reader can take them for honest results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pixelwise.classical.labeling import ORACLE_SUFFIX, oracle_name
from pixelwise.classical.registry import list_methods
from pixelwise.errors import PixelwiseError, did_you_mean

if TYPE_CHECKING:
    from pixelwise.data.folder import SegmentationFolder

Family = Literal["classical", "cnn", "adversarial", "oracle"]
NETWORK_METHODS = ("cnn", "adversarial", "semi", "fixmatch", "self-training")
SEMI_SUPERVISED = ("semi", "fixmatch", "self-training")  # the methods that need unlabeled images


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

    def check(self, train: SegmentationFolder) -> None:
        """Refuse, before any method does work, a training split this method cannot fit on; none by default."""

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

    def check(self, train: SegmentationFolder) -> None:
        if self.semi and not train.unlabeled_paths and self.config.labeled_fraction >= 1:
            raise PixelwiseError(
                f"{train.root}: method {self.name!r} needs unlabeled images; put them in "
                f"{train.root / 'unlabeled'} or hide labels with --set labeled_fraction=0.25 (every CNN then "
                "trains on those labels only)"
            )

    def fit(self, train: SegmentationFolder, val: SegmentationFolder | None, out_dir: Path) -> None:
        from pixelwise.inference.predictor import Predictor
        from pixelwise.train.loop import fit

        self.check(train)
        # the loop adds the dataset's unlabeled/ images itself; force: a rerun into the same report replaces it
        run = fit(self.config, train, val, out_dir=out_dir, force=True, progress=self.progress)
        self.checkpoint = Path(run.best_checkpoint)
        self.train_images = len(train)
        self._predictor = Predictor.load(self.checkpoint)

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        from pixelwise.instances.boundary import fold_boundary

        if self._predictor is None:
            raise RuntimeError(f"{self.name}: call fit before predict")
        # a network trained with boundary_class names one class more than the data: fold it back
        return np.asarray(fold_boundary(self._predictor.predict_labels(image), self._predictor.classes)[0])


def default_method_names(*, oracle: bool = False) -> list[str]:
    """Every classical method with the fitted labeler, a CNN and the CNN trained adversarially.

    With ``oracle=True`` the oracle variants of the classical methods are added at the end.
    """
    names = [*list_methods(), "cnn", "adversarial"]
    if oracle:
        names += [oracle_name(name) for name in list_methods()]
    return names


def build_methods(
    names: Sequence[str | Method],
    *,
    train_options: dict[str, Any] | None = None,
    classical_options: dict[str, dict[str, Any]] | None = None,
    classical_fit_images: int | None = None,
) -> list[Method]:
    """Methods from their names: a classical name, ``<classical>-oracle``, or one of ``NETWORK_METHODS``.

    ``Method`` instances (your own methods) pass through unchanged. ``train_options`` override
    ``TrainConfig`` fields for every network (epochs, model, encoder...); each network method sets its own
    weights, using the config's where they are not 0 and the published ones otherwise (λ_adv 0.01,
    λ_semi 0.1, FixMatch 1 at threshold 0.95, self-training at max softmax 0.95). ``classical_options``: per
    classical method, its options; ``classical_fit_images``: fit the labelers on that many training images
    (None: all).
    """
    wanted = [name for name in names if isinstance(name, str)]
    known = list_methods()
    choices = [*known, *(oracle_name(name) for name in known), *NETWORK_METHODS]
    unknown = [name for name in wanted if name not in choices]
    if unknown:
        hint = did_you_mean(unknown[0], choices)
        raise PixelwiseError(f"unknown method {', '.join(map(repr, unknown))}{hint}; choose from {', '.join(choices)}")
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
    adversarial_weight = config.adversarial_weight or 0.01
    semi_weight = config.semi_weight or 0.1
    # each method has only its own terms, whatever train_options say for all networks
    alone = {"adversarial_weight": 0.0, "semi_weight": 0.0, "fixmatch_weight": 0.0}
    semi = name in SEMI_SUPERVISED
    if name == "cnn":
        config = config.replace(**alone)
        description = f"{config.model} trained with cross-entropy only"
    elif name == "adversarial":
        config = config.replace(**{**alone, "adversarial_weight": adversarial_weight})
        description = f"{config.model} trained with cross-entropy + {adversarial_weight:g} × adversarial loss"
    elif name == "semi":
        config = config.replace(
            **{**alone, "adversarial_weight": adversarial_weight, "semi_weight": semi_weight},
            semi_trust="discriminator",
        )
        description = f"{config.model}, adversarial + semi-supervised on the unlabeled images (λ_semi {semi_weight:g})"
    elif name == "fixmatch":
        weight = config.fixmatch_weight or 1.0
        config = config.replace(**{**alone, "fixmatch_weight": weight})
        description = (
            f"{config.model}, FixMatch on the unlabeled images (weight {weight:g}, confidence > "
            f"{config.fixmatch_threshold:g})"
        )
    else:  # self-training: L_semi trusting the max softmax instead of D (T_semi 0.2 is D's; 0.95 here)
        threshold = float(train_options.get("semi_threshold", 0.95))
        config = config.replace(**{**alone, "semi_weight": semi_weight}, semi_trust="softmax", semi_threshold=threshold)
        description = f"{config.model}, self-training on the unlabeled images (max softmax > {threshold:g})"
    family: Family = "adversarial" if config.uses_discriminator else "cnn"
    return NetworkMethod(name, family=family, config=config, description=description, semi=semi)
