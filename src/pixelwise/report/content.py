"""What the report says, computed from ``results.json``: method order, tables, summary sentences, facts, notes.

Markdown (``markdown``) and HTML (``html``) render the same content; a new report section is a function
here and a few lines in each renderer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pixelwise.classical.labeling import ORACLE_SUFFIX
from pixelwise.data.classes import ClassSpec

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


def degenerate(method: dict[str, Any]) -> str | None:
    """Why a method's clean prediction is no segmentation, or None when it is one.

    Degenerate: one class predicted on every test pixel, or at most one of the classes in the truth found
    (IoU below ``FOUND_IOU`` on all the others): e.g. a threshold that calls every pixel of a tumour scan
    background, which scores a fine mIoU on the background alone. Unscored methods and a truth of a
    single class are not judged.

    >>> scores = {"background": {"iou": 0.96, "support": 960}, "tumour": {"iou": 0.0, "support": 40}}
    >>> degenerate({"metrics": {"miou": 0.48, "per_class": scores, "confusion_matrix": [[960, 0], [40, 0]]}})
    "predicts 'background' on every test pixel"
    >>> degenerate({"metrics": {"miou": 0.48, "per_class": scores}})
    "finds only 'background' (IoU below 0.01 on tumour)"
    """
    metrics = method["metrics"]
    per_class: dict[str, dict[str, Any]] = metrics.get("per_class") or {}
    present = [name for name, scores in per_class.items() if (scores.get("support") or 0) > 0]
    if metrics.get("miou") is None or len(present) < 2:
        return None
    matrix = metrics.get("confusion_matrix")
    if matrix:
        predicted = [index for index, column in enumerate(zip(*matrix, strict=True)) if sum(column) > 0]
        if len(predicted) == 1:
            return f"predicts {list(per_class)[predicted[0]]!r} on every test pixel"
    found = [name for name in present if to_float(per_class[name].get("iou"), default=0.0) >= FOUND_IOU]
    if len(found) > 1:
        return None
    missed = ", ".join(name for name in present if name not in found)
    if not found:
        return f"finds no class (IoU below {FOUND_IOU:g} on {missed})"
    return f"finds only {found[0]!r} (IoU below {FOUND_IOU:g} on {missed})"


def honest_methods(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The methods that never see the test truth, best clean mIoU first; degenerate ones (``degenerate``)
    after them, unscored ones last."""
    methods = [method for method in results["methods"] if not method.get("oracle")]
    return sorted(methods, key=_rank)


def _rank(method: dict[str, Any]) -> tuple[bool, bool, float]:
    miou = method["metrics"].get("miou")
    return miou is None, degenerate(method) is not None, -to_float(miou, default=-1.0)


def oracle_methods(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle upper bounds, best clean mIoU first."""
    methods = [method for method in results["methods"] if method.get("oracle")]
    return sorted(methods, key=lambda method: -to_float(method["metrics"].get("miou"), default=-1.0))


def table_name(method: dict[str, Any]) -> str:
    """A method's name as the tables show it: marked when its prediction is degenerate."""
    return f"{method['name']} {DEGENERATE_MARK}" if degenerate(method) else str(method["name"])


def degenerate_notes(methods: Sequence[dict[str, Any]]) -> list[str]:
    """One line per degenerate method, for under the tables that mark it."""
    return [
        f"{DEGENERATE_MARK} {method['name']} {degenerate(method)}: its scores measure the class balance, "
        "not a segmentation, and it is ranked after the methods that segment."
        for method in methods
        if degenerate(method)
    ]


def to_float(value: Any, *, default: float = math.nan) -> float:
    """A score from results.json as a float; ``default`` where it is missing (null) or NaN."""
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def cell(value: Any, digits: int = 3) -> str:
    number = to_float(value)
    return "–" if math.isnan(number) else f"{number:.{digits}f}"


def seconds(value: Any) -> str:
    number = to_float(value)
    if math.isnan(number):
        return "–"
    return f"{number:.2f}" if number < 10 else f"{number:.0f}"


def milliseconds(value: Any) -> str:
    number = to_float(value)
    if math.isnan(number):
        return "–"
    return f"{number:.2f}" if number < 10 else f"{number:.1f}" if number < 100 else f"{number:.0f}"


SCORE_HEADER = ["method", "family", *(label for _, label in SUMMARY_METRICS), "ms / image", "train s"]


def score_rows(methods: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The clean-score table as text cells, one row per method, in the given order."""
    return [
        [
            table_name(method),
            FAMILY_LABELS.get(method["family"], method["family"]),
            *(cell(method["metrics"].get(key)) for key, _ in SUMMARY_METRICS),
            milliseconds(method.get("ms_per_image")),
            "–" if method.get("oracle") else seconds(method.get("train_seconds")),  # nothing is trained
        ]
        for method in methods
    ]


def noise_rows(results: dict[str, Any], methods: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """mIoU per method (rows) and noise level (columns)."""
    levels = results.get("noise", [])
    header = ["method", *(level["name"] for level in levels)]
    rows = [
        [table_name(method), *(cell(method["noise"].get(level["key"], {}).get("miou")) for level in levels)]
        for method in methods
    ]
    return header, rows


def per_class_rows(results: dict[str, Any], methods: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Clean IoU per class (rows) and method (columns): where a method confuses classes it shows here."""
    names = ClassSpec.from_dict(results["dataset"]["classes"]).names
    header = ["class", *(str(method["name"]) for method in methods)]
    rows = [
        [name, *(cell(method["metrics"].get("per_class", {}).get(name, {}).get("iou"), 2) for method in methods)]
        for name in names
    ]
    return header, rows


def summary_sentences(results: dict[str, Any]) -> list[str]:
    """What the numbers say, in a few sentences computed from them (nothing here is fixed text about a result)."""
    scored = [method for method in honest_methods(results) if method["metrics"].get("miou") is not None]
    if not scored:
        return ["No method produced a score."]
    honest = [method for method in scored if not degenerate(method)]
    failed = [method for method in scored if degenerate(method)]
    failures = [
        f"**{method['name']}** {degenerate(method)}, so its mIoU {cell(method['metrics']['miou'])} is no result"
        for method in failed
    ]
    if not honest:
        return [f"No method segments the test images: {'; '.join(failures)}."]
    best = honest[0]
    sentences = [
        f"Best on the clean test split: **{best['name']}** ({_family(best)}), mIoU {cell(best['metrics']['miou'])}, "
        f"pixel accuracy {cell(best['metrics']['pixel_accuracy'])}."
    ]
    if failures:
        sentences.append(f"Not a segmentation ({DEGENERATE_MARK}): {'; '.join(failures)}.")
    # the best of every family, in the order the families appear in the ranking
    leaders = [
        next(m for m in honest if m["family"] == family) for family in dict.fromkeys(m["family"] for m in honest)
    ]
    others = [method for method in leaders if method is not best]
    if others:
        listed = "; ".join(f"{m['name']} ({_family(m)}) {cell(m['metrics']['miou'])}" for m in others)
        sentences.append(f"Best of the other families: {listed}.")
    gaussian = [level for level in results.get("noise", []) if level["kind"] == "gaussian" and level["amount"] > 0]
    if gaussian:
        worst = max(gaussian, key=lambda level: level["amount"])
        changes = []
        for method in leaders:
            clean = to_float(method["metrics"].get("miou"))
            noisy = to_float(method["noise"].get(worst["key"], {}).get("miou"))
            if not (math.isnan(clean) or math.isnan(noisy)):
                changes.append(f"{method['name']} {clean:.2f} → {noisy:.2f}")
        if changes:
            sentences.append(f"With Gaussian noise of σ = {worst['amount']:g}, mIoU goes " + "; ".join(changes) + ".")
    # oracle against fitted labels of the same partitions: the gap is what naming the regions costs
    pairs = []
    for oracle in oracle_methods(results):
        base = str(oracle["name"]).removesuffix(ORACLE_SUFFIX)
        fitted = next((m for m in scored if m["name"] == base), None)
        if fitted is not None and oracle["metrics"].get("miou") is not None:
            pairs.append((to_float(oracle["metrics"]["miou"]), to_float(fitted["metrics"]["miou"])))
    if pairs:
        oracle_scores, fitted_scores = [p[0] for p in pairs], [p[1] for p in pairs]
        sentences.append(
            f"Labelled with the test truth (oracle, not a result), the same classical partitions reach mIoU "
            f"{_span(oracle_scores)}, against {_span(fitted_scores)} with the labelers fitted on the training "
            "split: the difference is what naming the regions costs, the oracle value how well the regions "
            "follow the objects."
        )
    return sentences


def _family(method: dict[str, Any]) -> str:
    return FAMILY_LABELS.get(method["family"], method["family"]).split(" (")[0]


def _span(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"


def dataset_lines(results: dict[str, Any]) -> list[str]:
    """Dataset, splits, classes, seed and budget, one fact per line."""
    dataset = results["dataset"]
    splits = dataset.get("splits", {})
    names = ClassSpec.from_dict(dataset["classes"]).names
    given = results.get("settings") or {}
    lines = [
        f"Dataset: {dataset.get('name', dataset.get('root', '?'))}"
        + (f" ({dataset['description']})" if dataset.get("description") else "")
        + (f"; options {_settings(given['dataset'])}" if given.get("dataset") else ""),
        "Split sizes: " + ", ".join(f"{split} {count}" for split, count in splits.items()),
        f"Classes ({len(names)}): " + ", ".join(names),
    ]
    if results.get("noise"):
        lines.append(
            "Noise levels (seeded: every method sees the same noisy images): "
            + ", ".join(level["name"] for level in results["noise"])
        )
    fitted = [m["train_images"] for m in results["methods"] if m["family"] == "classical" and m.get("train_images")]
    if fitted and min(fitted) < splits.get("train", 0):
        lines.append(f"Classical labelers fitted on {min(fitted)} of the {splits['train']} training images")
    budget = results.get("budget") or {}
    shown = {key: budget[key] for key in BUDGET_KEYS if budget.get(key) is not None} or dict(budget)
    if budget:
        # every setting the run was given (--set, --model-option, --config, flags), whatever its name
        shown.update(given.get("train") or {})
    if shown:
        lines.append("CNN training: " + _settings(shown))
    lines.append(f"Seed: {results.get('seed')}; total time {seconds(results.get('total_seconds'))} s")
    return lines


def _settings(values: dict[str, Any]) -> str:
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


def measuring_notes(results: dict[str, Any]) -> list[str]:
    tolerance = "2"
    for method in results["methods"]:
        if method["metrics"].get("boundary_tolerance") is not None:
            tolerance = f"{method['metrics']['boundary_tolerance']:g}"
            break
    notes = [note.replace("{tolerance}", tolerance) for note in MEASURING_NOTES]
    if results.get("torch_threads"):
        notes.append(
            f"Threads: the networks ran with {results['torch_threads']} torch thread(s), classical methods with one."
        )
    return notes


def checkpoint_lines(results: dict[str, Any]) -> list[str]:
    return [f"{method['name']}: {method['checkpoint']}" for method in results["methods"] if method.get("checkpoint")]
