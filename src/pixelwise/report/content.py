"""What the report says, computed from the results (``report.results``): method order, tables, summary
sentences, facts, notes.

Markdown (``markdown``) and HTML (``html``) render the same content; a new report section is a function
here and a few lines in each renderer. Tables are rows of ``Cell``: the text shown and the number it shows,
so a renderer ranks values (the HTML's bold best) without reading its own text back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pixelwise.classical.labeling import ORACLE_SUFFIX
from pixelwise.report.results import ComparisonResults, MethodResult

FAMILY_LABELS = {
    "classical": "classical (labeler fitted on train)",
    "cnn": "CNN",
    "adversarial": "CNN + adversarial",
    "oracle": "oracle (labels from the test truth)",
}
FAMILY_COLORS = {"classical": "#4c78a8", "cnn": "#f58518", "adversarial": "#e45756", "oracle": "#a0a0a0"}
SUMMARY_METRICS = (
    ("miou", "mIoU"),
    ("mean_dice", "mean Dice"),
    ("pixel_accuracy", "pixel accuracy"),
    ("boundary_f1", "boundary F1"),
)
# the training settings the report always lists, besides every one the run was given (results.json keeps them all)
BUDGET_KEYS = ("model", "encoder", "encoder_weights", "epochs", "batch_size", "crop_size", "optimizer", "lr", "loss")
# a class counts as found from this IoU on: below it the report's two or three decimals read 0.00
FOUND_IOU = 0.01
DEGENERATE_MARK = "⚠"


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and the number the text shows (rounded as shown; NaN when it shows none)."""

    text: str
    value: float = math.nan


def degenerate(method: MethodResult) -> str | None:
    """Why a method's clean prediction is no segmentation, or None when it is one.

    Degenerate: one class predicted on every test pixel, or at most one of the classes in the truth found
    (IoU below ``FOUND_IOU`` on all the others): e.g. a threshold that calls every pixel of a tumour scan
    background, which scores a fine mIoU on the background alone. Unscored methods and a truth of a
    single class are not judged.

    >>> from pixelwise.metrics import ClassScores, Scores
    >>> per_class = {"background": ClassScores(iou=0.96, support=960), "tumour": ClassScores(iou=0.0, support=40)}
    >>> scores = Scores(miou=0.48, per_class=per_class, confusion_matrix=((960, 0), (40, 0)))
    >>> degenerate(MethodResult(name="otsu", family="classical", metrics=scores))
    "predicts 'background' on every test pixel"
    >>> scores = Scores(miou=0.48, per_class=per_class)
    >>> degenerate(MethodResult(name="otsu", family="classical", metrics=scores))
    "finds only 'background' (IoU below 0.01 on tumour)"
    """
    metrics = method.metrics
    present = [name for name, scores in metrics.per_class.items() if scores.support > 0]
    if math.isnan(metrics.miou) or len(present) < 2:
        return None
    if metrics.confusion_matrix:
        columns = zip(*metrics.confusion_matrix, strict=True)
        predicted = [index for index, column in enumerate(columns) if sum(column) > 0]
        if len(predicted) == 1:
            return f"predicts {list(metrics.per_class)[predicted[0]]!r} on every test pixel"
    found = [name for name in present if _or(metrics.per_class[name].iou, 0.0) >= FOUND_IOU]
    if len(found) > 1:
        return None
    missed = ", ".join(name for name in present if name not in found)
    if not found:
        return f"finds no class (IoU below {FOUND_IOU:g} on {missed})"
    return f"finds only {found[0]!r} (IoU below {FOUND_IOU:g} on {missed})"


def honest_methods(results: ComparisonResults) -> list[MethodResult]:
    """The methods that never see the test truth, best clean mIoU first; degenerate ones (``degenerate``)
    after them, unscored ones last."""
    return sorted((method for method in results.methods if not method.oracle), key=_rank)


def _rank(method: MethodResult) -> tuple[bool, bool, float]:
    miou = method.metrics.miou
    return math.isnan(miou), degenerate(method) is not None, -_or(miou, -1.0)


def oracle_methods(results: ComparisonResults) -> list[MethodResult]:
    """The oracle upper bounds, best clean mIoU first."""
    methods = [method for method in results.methods if method.oracle]
    return sorted(methods, key=lambda method: -_or(method.metrics.miou, -1.0))


def table_name(method: MethodResult) -> str:
    """A method's name as the tables show it: marked when its prediction is degenerate."""
    return f"{method.name} {DEGENERATE_MARK}" if degenerate(method) else method.name


def degenerate_notes(methods: Sequence[MethodResult]) -> list[str]:
    """One line per degenerate method, for under the tables that mark it."""
    return [
        f"{DEGENERATE_MARK} {method.name} {degenerate(method)}: its scores measure the class balance, "
        "not a segmentation, and it is ranked after the methods that segment."
        for method in methods
        if degenerate(method)
    ]


def _or(value: float, default: float) -> float:
    """``value``, or ``default`` where it is NaN (not scored)."""
    return default if math.isnan(value) else value


def cell(value: float, digits: int = 3) -> Cell:
    """A score shown with ``digits`` decimals; "–" for none."""
    return Cell("–") if math.isnan(value) else Cell(f"{value:.{digits}f}", round(value, digits))


def seconds(value: float) -> Cell:
    if math.isnan(value):
        return Cell("–")
    return cell(value, 2) if value < 10 else cell(value, 0)


def milliseconds(value: float) -> Cell:
    if math.isnan(value):
        return Cell("–")
    return cell(value, 2) if value < 10 else cell(value, 1) if value < 100 else cell(value, 0)


def text(value: str) -> Cell:
    return Cell(value)


SCORE_HEADER = ["method", "family", *(label for _, label in SUMMARY_METRICS), "ms / image", "train s"]


def score_rows(methods: Sequence[MethodResult]) -> list[list[Cell]]:
    """The clean-score table, one row per method, in the given order."""
    return [
        [
            text(table_name(method)),
            text(FAMILY_LABELS.get(method.family, method.family)),
            *(cell(getattr(method.metrics, key)) for key, _ in SUMMARY_METRICS),
            milliseconds(method.ms_per_image),
            Cell("–") if method.oracle else seconds(method.train_seconds),  # nothing is trained
        ]
        for method in methods
    ]


def noise_rows(results: ComparisonResults, methods: Sequence[MethodResult]) -> tuple[list[str], list[list[Cell]]]:
    """mIoU per method (rows) and noise level (columns)."""
    header = ["method", *(level.name for level in results.noise)]
    rows = [
        [text(table_name(method)), *(cell(_level_miou(method, level.key)) for level in results.noise)]
        for method in methods
    ]
    return header, rows


def _level_miou(method: MethodResult, key: str) -> float:
    level = method.noise.get(key)
    return math.nan if level is None else level.miou


def per_class_rows(results: ComparisonResults, methods: Sequence[MethodResult]) -> tuple[list[str], list[list[Cell]]]:
    """Clean IoU per class (rows) and method (columns): where a method confuses classes it shows here."""
    header = ["class", *(method.name for method in methods)]
    rows = [
        [text(name), *(cell(_class_iou(method, name), 2) for method in methods)]
        for name in results.dataset.classes.names
    ]
    return header, rows


def _class_iou(method: MethodResult, name: str) -> float:
    scores = method.metrics.per_class.get(name)
    return math.nan if scores is None else scores.iou


OBJECT_HEADER = ["method", "found / true", "count error", "PQ", "SQ", "RQ", "F1 at IoU 0.5", "AJI"]
# the columns where higher is better (the HTML's bold); the count error is best nearest 0
OBJECT_SCORE_COLUMNS = (3, 4, 5, 6, 7)


def object_methods(results: ComparisonResults, methods: Sequence[MethodResult]) -> list[MethodResult]:
    """The methods with object scores (the test truth has instances), in the given order; [] without."""
    return [method for method in methods if method.instances is not None] if results.dataset.instances else []


def object_rows(methods: Sequence[MethodResult]) -> list[list[Cell]]:
    """The object table, one row per method: objects found and true, count error, PQ, SQ, RQ, F1, AJI."""
    rows = []
    for method in methods:
        scores = method.instances
        if scores is None:
            continue
        error = scores.count_error
        rows.append(
            [
                text(table_name(method)),
                Cell(f"{scores.count_predicted} / {scores.count_true}", scores.count_predicted),
                Cell("–") if not math.isfinite(error) else Cell(f"{error:+.1%}", round(error, 3)),
                cell(scores.pq),
                cell(scores.sq),
                cell(scores.rq),
                cell(scores.f1),
                cell(scores.aji),
            ]
        )
    return rows


def object_notes(results: ComparisonResults) -> list[str]:
    """How the objects were found and scored, and where the truth's came from."""
    dataset = results.dataset
    tested = dataset.test_limit or dataset.splits.get("test", 0)
    notes = [
        "Objects are found the same way in every method's clean prediction: each class's connected components, "
        "touching objects split by a watershed on the distance to the background, specks under 16 pixels "
        "dropped (as pixelwise evaluate --instances finds them in masks). Objects match at IoU > 0.5 within "
        "a class: PQ = SQ (mean IoU of the matches) × RQ (TP / (TP + FP/2 + FN/2)), averaged over the classes; "
        "F1 is the same matching over all classes; AJI is Kumar et al.'s aggregated Jaccard index; count error "
        "is (found − true) / true.",
    ]
    if tested and dataset.instances < tested:
        notes.append(
            f"{tested - dataset.instances} of the {tested} test images have no label image of their objects "
            "(instances/ beside masks/): their true objects are the masks' connected components, where touching "
            "objects count as one."
        )
    return notes


def summary_sentences(results: ComparisonResults) -> list[str]:
    """What the numbers say, in a few sentences computed from them (nothing here is fixed text about a result)."""
    scored = [method for method in honest_methods(results) if not math.isnan(method.metrics.miou)]
    if not scored:
        return ["No method produced a score."]
    honest = [method for method in scored if not degenerate(method)]
    failed = [method for method in scored if degenerate(method)]
    failures = [
        f"**{method.name}** {degenerate(method)}, so its mIoU {cell(method.metrics.miou).text} is no result"
        for method in failed
    ]
    if not honest:
        return [f"No method segments the test images: {'; '.join(failures)}."]
    best = honest[0]
    sentences = [
        f"Best on the clean test split: **{best.name}** ({_family(best)}), mIoU {cell(best.metrics.miou).text}, "
        f"pixel accuracy {cell(best.metrics.pixel_accuracy).text}."
    ]
    if failures:
        sentences.append(f"Not a segmentation ({DEGENERATE_MARK}): {'; '.join(failures)}.")
    # the best of every family, in the order the families appear in the ranking
    leaders = [next(m for m in honest if m.family == family) for family in dict.fromkeys(m.family for m in honest)]
    others = [method for method in leaders if method is not best]
    if others:
        listed = "; ".join(f"{m.name} ({_family(m)}) {cell(m.metrics.miou).text}" for m in others)
        sentences.append(f"Best of the other families: {listed}.")
    gaussian = [level for level in results.noise if level.kind == "gaussian" and level.amount > 0]
    if gaussian:
        worst = max(gaussian, key=lambda level: level.amount)
        changes = []
        for method in leaders:
            clean, noisy = method.metrics.miou, _level_miou(method, worst.key)
            if not (math.isnan(clean) or math.isnan(noisy)):
                changes.append(f"{method.name} {clean:.2f} → {noisy:.2f}")
        if changes:
            sentences.append(f"With Gaussian noise of σ = {worst.amount:g}, mIoU goes " + "; ".join(changes) + ".")
    # oracle against fitted labels of the same partitions: the gap is what naming the regions costs
    pairs = []
    for oracle in oracle_methods(results):
        base = oracle.name.removesuffix(ORACLE_SUFFIX)
        fitted = next((m for m in scored if m.name == base), None)
        if fitted is not None and not math.isnan(oracle.metrics.miou):
            pairs.append((oracle.metrics.miou, fitted.metrics.miou))
    if pairs:
        oracle_scores, fitted_scores = [p[0] for p in pairs], [p[1] for p in pairs]
        sentences.append(
            f"Labelled with the test truth (oracle, not a result), the same classical partitions reach mIoU "
            f"{_span(oracle_scores)}, against {_span(fitted_scores)} with the labelers fitted on the training "
            "split: the difference is what naming the regions costs, the oracle value how well the regions "
            "follow the objects."
        )
    return sentences


def _family(method: MethodResult) -> str:
    return FAMILY_LABELS.get(method.family, method.family).split(" (")[0]


def _span(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"


def dataset_lines(results: ComparisonResults) -> list[str]:
    """Dataset, splits, classes, seed and budget, one fact per line."""
    dataset = results.dataset
    splits = dataset.splits
    names = dataset.classes.names
    given = results.settings
    lines = [
        f"Dataset: {dataset.name or dataset.root or '?'}"
        + (f" ({dataset.description})" if dataset.description else "")
        + (f"; options {_settings(given['dataset'])}" if given.get("dataset") else ""),
        "Split sizes: " + ", ".join(f"{split} {count}" for split, count in splits.items()),
        f"Classes ({len(names)}): " + ", ".join(names),
    ]
    if results.noise:
        lines.append(
            "Noise levels (seeded: every method sees the same noisy images): "
            + ", ".join(level.name for level in results.noise)
        )
    fitted = [m.train_images for m in results.methods if m.family == "classical" and m.train_images]
    if fitted and min(fitted) < splits.get("train", 0):
        lines.append(f"Classical labelers fitted on {min(fitted)} of the {splits['train']} training images")
    budget = results.budget
    shown = {key: budget[key] for key in BUDGET_KEYS if budget.get(key) is not None} or dict(budget)
    if budget:
        # every setting the run was given (--set, --model-option, --config, flags), whatever its name
        shown.update(given.get("train") or {})
    if shown:
        lines.append("CNN training: " + _settings(shown))
    lines.append(f"Seed: {results.seed}; total time {seconds(results.total_seconds).text} s")
    return lines


def _settings(values: Mapping[str, Any]) -> str:
    """``{"epochs": 2, "model_options": {"width": 8}}`` -> ``epochs 2, model_options {width=8}``."""

    def shown(value: Any) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{key}={shown(item)}" for key, item in value.items()) + "}"
        if isinstance(value, list | tuple):
            return ",".join(shown(item) for item in value)
        return "none" if value is None else str(value)

    return ", ".join(f"{key} {shown(value)}" for key, value in values.items())


MEASURING_NOTES = [
    "Scores are computed on the test split only, from one confusion matrix accumulated over all test images; "
    "mIoU and mean Dice average the classes present in the truth or the prediction.",
    "Boundary F1: predicted boundary pixels within {tolerance} px of a true boundary of the same class "
    "(precision) and vice versa (recall), per class, averaged.",
    "ms / image is prediction only (no training, no file reading), measured on this machine on the clean "
    "test images; train s is the fitting time (labeler fitting for classical methods, network training for CNNs).",
    "Classical methods partition the image; a labeler fitted on the training split names the regions. The "
    "oracle rows name each region with the test truth instead: an upper bound for the partition, never a result.",
]


def measuring_notes(results: ComparisonResults) -> list[str]:
    tolerance = "2"
    for method in results.methods:
        if not math.isnan(method.metrics.boundary_tolerance):
            tolerance = f"{method.metrics.boundary_tolerance:g}"
            break
    notes = [note.replace("{tolerance}", tolerance) for note in MEASURING_NOTES]
    if results.torch_threads:
        notes.append(
            f"Threads: the networks ran with {results.torch_threads} torch thread(s), classical methods with one."
        )
    return notes


def trained_models(results: ComparisonResults) -> list[MethodResult]:
    """The methods whose trained model is kept beside the report (``checkpoint``: its relative path)."""
    return [method for method in results.methods if method.checkpoint]
