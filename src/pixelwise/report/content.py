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
# the training settings the report lists (results.json keeps them all)
BUDGET_KEYS = ("model", "encoder", "encoder_weights", "epochs", "batch_size", "crop_size", "optimizer", "lr", "loss")


def honest_methods(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The methods that never see the test truth, best clean mIoU first (unscored ones last)."""
    methods = [method for method in results["methods"] if not method.get("oracle")]
    return sorted(methods, key=lambda method: -to_float(method["metrics"].get("miou"), default=-1.0))


def oracle_methods(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle upper bounds, best clean mIoU first."""
    methods = [method for method in results["methods"] if method.get("oracle")]
    return sorted(methods, key=lambda method: -to_float(method["metrics"].get("miou"), default=-1.0))


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
            str(method["name"]),
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
        [str(method["name"]), *(cell(method["noise"].get(level["key"], {}).get("miou")) for level in levels)]
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
    honest = [method for method in honest_methods(results) if method["metrics"].get("miou") is not None]
    if not honest:
        return ["No method produced a score."]
    best = honest[0]
    sentences = [
        f"Best on the clean test split: **{best['name']}** ({_family(best)}), mIoU {cell(best['metrics']['miou'])}, "
        f"pixel accuracy {cell(best['metrics']['pixel_accuracy'])}."
    ]
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
        fitted = next((m for m in honest if m["name"] == base), None)
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
    lines = [
        f"Dataset: {dataset.get('name', dataset.get('root', '?'))}"
        + (f" ({dataset['description']})" if dataset.get("description") else ""),
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
    shown = {key: budget[key] for key in BUDGET_KEYS if budget.get(key) is not None} or budget
    if shown:
        lines.append("CNN training: " + ", ".join(f"{key} {value}" for key, value in shown.items()))
    lines.append(f"Seed: {results.get('seed')}; total time {seconds(results.get('total_seconds'))} s")
    return lines


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
