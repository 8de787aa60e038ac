"""The comparison report: figures (matplotlib), ``report.md`` and a self-contained ``report.html``.

``write_report(results, out_dir)`` takes the dict that ``pixelwise.compare`` returns (the content of
``results.json``, schema in ``pixelwise.comparison.results``) and the example PNGs it saved under ``out_dir``, and writes

- ``figures/methods.png``: clean test-set scores per method, coloured by family, oracle bars hatched;
- ``figures/noise.png``: mIoU against Gaussian sigma and against the salt-and-pepper fraction;
- ``figures/examples.png``: image | truth | each method, with the class legend in the dataset's colours;
- ``report.md`` (links the figures) and ``report.html`` (the same figures inline as base64 PNG: one file
  that opens offline and can be mailed on its own).

Oracle results (regions labelled with the test truth) are upper bounds, not methods: they get their own
table, hatched bars and dotted curves, and the word "oracle" wherever they appear.
"""

from __future__ import annotations

import base64
import html
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.classical.labeling import ORACLE_SUFFIX
from pixelwise.data.classes import ClassSpec
from pixelwise.files import atomic_path

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
FIGURES = ("methods", "noise", "examples", "examples_oracle")
# the training settings the report lists (results.json keeps them all)
BUDGET_KEYS = ("model", "encoder", "encoder_weights", "epochs", "batch_size", "crop_size", "optimizer", "lr", "loss")


def write_report(results: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the figures, ``report.md`` and ``report.html`` into ``out_dir``; return their paths by name.

    Figures that have nothing to show are left out (no noise sweep: no noise figure; no saved examples: no
    grid), and the text says so instead of showing an empty plot.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    if results["methods"]:
        written["methods"] = _save_figure(plot_methods(results), out / "figures" / "methods.png")
    if len(results.get("noise", [])) > 1 and results["methods"]:
        written["noise"] = _save_figure(plot_noise(results), out / "figures" / "noise.png")
    if results.get("examples") and honest_methods(results):
        written["examples"] = _save_figure(plot_examples(results, out), out / "figures" / "examples.png")
    if results.get("examples") and oracle_methods(results):
        figure = plot_examples(results, out, oracle=True)
        written["examples_oracle"] = _save_figure(figure, out / "figures" / "examples-oracle.png")
    figure_links = {name: path.relative_to(out).as_posix() for name, path in written.items()}
    figure_data = {name: path.read_bytes() for name, path in written.items()}
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(render_markdown(results, figure_links), encoding="utf-8")
    written["markdown"] = out / "report.md"
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(render_html(results, figure_data), encoding="utf-8")
    written["html"] = out / "report.html"
    return written


# ----------------------------------------------------------------------------------------------- ordering


def honest_methods(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The methods that never see the test truth, best clean mIoU first (unscored ones last)."""
    methods = [method for method in results["methods"] if not method.get("oracle")]
    return sorted(methods, key=lambda method: -_number(method["metrics"].get("miou"), default=-1.0))


def oracle_methods(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle upper bounds, best clean mIoU first."""
    methods = [method for method in results["methods"] if method.get("oracle")]
    return sorted(methods, key=lambda method: -_number(method["metrics"].get("miou"), default=-1.0))


def _number(value: Any, *, default: float = math.nan) -> float:
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


# ------------------------------------------------------------------------------------------------ figures


def _save_figure(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=figure.dpi, bbox_inches="tight", facecolor="white")
    return path


def plot_methods(results: dict[str, Any]) -> Any:
    """Horizontal bars: one panel per summary metric, one bar per method (honest first, then oracle)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    methods = honest_methods(results) + oracle_methods(results)
    height = 0.8 + 0.32 * len(methods)
    figure = Figure(figsize=(12.5, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, len(SUMMARY_METRICS), sharey=True)
    positions = np.arange(len(methods))[::-1]  # best at the top
    for axis, (key, label) in zip(axes, SUMMARY_METRICS, strict=True):
        values = [_number(method["metrics"].get(key)) for method in methods]
        for position, method, value in zip(positions, methods, values, strict=True):
            if math.isnan(value):
                axis.text(0.01, position, "n/a", va="center", fontsize=8, color="#666666")
                continue
            oracle = bool(method.get("oracle"))
            axis.barh(
                position,
                value,
                color=FAMILY_COLORS.get(method["family"], "#777777"),
                hatch="///" if oracle else None,
                edgecolor="white" if oracle else None,
                alpha=0.75 if oracle else 1.0,
                height=0.75,
            )
            axis.text(min(value, 1.0) + 0.01, position, f"{value:.2f}", va="center", fontsize=8)
        axis.set_xlim(0, 1.12)
        axis.set_title(label, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
        axis.set_axisbelow(True)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
    axes[0].set_yticks(positions, [str(method["name"]) for method in methods], fontsize=9)
    families = [family for family in FAMILY_LABELS if any(method["family"] == family for method in methods)]
    handles = [
        Patch(
            facecolor=FAMILY_COLORS[family],
            hatch="///" if family == "oracle" else None,
            edgecolor="white",
            label=FAMILY_LABELS[family],
        )
        for family in families
    ]
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=9, frameon=False)
    return figure


def _method_styles(methods: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Line styles that match the bar chart: CNNs in their family colour and thick, classical methods in
    distinct cool colours, and each oracle dotted in the colour of the classical method it bounds."""
    cool = ["#4c78a8", "#54a24b", "#b279a2", "#72b7b2", "#9d755d", "#2f4b7c", "#88a61b", "#665191", "#1b9e77"]
    styles: dict[str, dict[str, Any]] = {}
    classical = [method for method in methods if method["family"] == "classical"]
    for index, method in enumerate(classical):
        styles[method["name"]] = {"color": cool[index % len(cool)], "linestyle": "-", "linewidth": 1.4, "marker": "."}
    for method in methods:
        family = method["family"]
        if family in ("cnn", "adversarial"):
            styles[method["name"]] = {
                "color": FAMILY_COLORS[family],
                "linestyle": "-" if family == "cnn" else "--",
                "linewidth": 2.6,
                "marker": "o",
            }
        elif family == "oracle":
            partner = styles.get(str(method["name"]).removesuffix(ORACLE_SUFFIX), {})
            styles[method["name"]] = {
                "color": partner.get("color", FAMILY_COLORS["oracle"]),
                "linestyle": ":",
                "linewidth": 1.4,
                "marker": "x",
            }
        elif method["name"] not in styles:
            styles[method["name"]] = {"color": "#777777", "linestyle": "-", "linewidth": 1.4, "marker": "."}
    return styles


def noise_curves(results: dict[str, Any], kind: str, metric: str = "miou") -> dict[str, list[tuple[float, float]]]:
    """Per method, (amount, score) along one noise kind, starting at the clean score (amount 0).

    >>> results = {"noise": [{"key": "clean", "kind": "gaussian", "amount": 0.0},
    ...                      {"key": "gaussian-0.1", "kind": "gaussian", "amount": 0.1}],
    ...            "methods": [{"name": "otsu", "noise": {"clean": {"miou": 0.5}, "gaussian-0.1": {"miou": 0.25}}}]}
    >>> noise_curves(results, "gaussian")
    {'otsu': [(0.0, 0.5), (0.1, 0.25)]}
    """
    levels = [level for level in results["noise"] if level["amount"] == 0 or level["kind"] == kind]
    levels.sort(key=lambda level: level["amount"])
    curves = {}
    for method in results["methods"]:
        points = []
        for level in levels:
            value = _number(method["noise"].get(level["key"], {}).get(metric))
            if not math.isnan(value):
                points.append((float(level["amount"]), value))
        curves[method["name"]] = points
    return curves


def plot_noise(results: dict[str, Any]) -> Any:
    """mIoU against noise: a column per noise kind in the sweep, a line per method.

    With oracle results a second row shows them on their own (each dotted in the colour of its classical
    method): the honest classical scores are often too low to fall further, while the oracle rows show the
    partition itself breaking up under noise.
    """
    from matplotlib.figure import Figure

    kinds = [
        kind
        for kind in ("gaussian", "salt_pepper")
        if any(level["kind"] == kind and level["amount"] > 0 for level in results["noise"])
    ]
    rows = [("methods", honest_methods(results))]
    if oracle_methods(results):
        rows.append(("oracle bounds", oracle_methods(results)))
    styles = _method_styles(honest_methods(results) + oracle_methods(results))
    figure = Figure(figsize=(12.5, 1.0 + 3.6 * len(rows)), dpi=110, layout="constrained")
    axes = np.asarray(figure.subplots(len(rows), max(1, len(kinds)), sharey=True, squeeze=False))
    titles = {
        "gaussian": ("Gaussian noise", "σ (fraction of the intensity range)"),
        "salt_pepper": ("salt-and-pepper noise", "fraction of pixels replaced"),
    }
    for row, (row_title, methods) in enumerate(rows):
        for column, kind in enumerate(kinds):
            axis = axes[row, column]
            curves = noise_curves(results, kind)
            for method in methods:
                points = curves[method["name"]]
                if points:
                    amounts, scores = zip(*points, strict=True)
                    axis.plot(amounts, scores, label=str(method["name"]), **styles[method["name"]])
            ticks = sorted({0.0, *(level["amount"] for level in results["noise"] if level["kind"] == kind)})
            axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks], fontsize=8)
            axis.set_title(f"{titles[kind][0]}: {row_title}", fontsize=10)
            axis.set_xlabel(titles[kind][1], fontsize=9)
            axis.set_ylim(0, 1)
            axis.grid(alpha=0.3)
            for side in ("top", "right"):
                axis.spines[side].set_visible(False)
        axes[row, 0].set_ylabel("mIoU on the test split", fontsize=9)
        axes[row, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    return figure


def read_example(path: Path) -> np.ndarray:
    """A saved example PNG: an image as float (H, W, C) in [0, 1], or a palette mask as (H, W) labels."""
    from PIL import Image

    with Image.open(path) as picture:
        if picture.mode == "P":
            return np.asarray(picture, dtype=np.uint8)
        array = np.asarray(picture.convert("L" if picture.mode in ("L", "I;16", "I") else "RGB"))
    array = array.astype(np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def plot_examples(results: dict[str, Any], out_dir: Path, *, oracle: bool = False) -> Any:
    """The qualitative grid: a row per example (clean, then noisy), image | truth | each method.

    ``oracle=False`` shows the honest methods, ``oracle=True`` the oracle bounds: a grid of their own, so that
    neither gets too small to read and no reader takes one for the other.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    classes = ClassSpec.from_dict(results["dataset"]["classes"])
    methods = oracle_methods(results) if oracle else honest_methods(results)
    examples = results["examples"]
    columns = 2 + len(methods)
    tile = 1.25
    figure = Figure(figsize=(tile * columns + 0.6, tile * len(examples) + 1.0), dpi=100, layout="constrained")
    axes = np.asarray(figure.subplots(len(examples), columns, squeeze=False))
    titles = ["image", "truth", *(str(method["name"]) for method in methods)]
    for row, example in enumerate(examples):
        image = read_example(out_dir / example["image"])
        panels: list[np.ndarray | None] = [image, classes.colorize(read_example(out_dir / example["truth"]))]
        for method in methods:
            saved = example["predictions"].get(method["name"])
            panels.append(classes.colorize(read_example(out_dir / saved)) if saved else None)
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if panel is None:
                axis.set_axis_off()
                axis.text(0.5, 0.5, "n/a", ha="center", va="center", transform=axis.transAxes)
            elif panel.ndim == 3 and panel.shape[2] == 1:
                axis.imshow(panel[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                axis.imshow(panel, interpolation="nearest")
            if row == 0:
                # wrap at hyphens and spaces only: a name cut mid-word reads as two names
                title = textwrap.wrap(titles[column], 16, break_long_words=False)
                axis.set_title("\n".join(title), fontsize=8)
        axes[row, 0].set_ylabel(f"{example['stem']}\n{example.get('noise_name', 'clean')}", fontsize=8)
    handles = [
        Patch(facecolor="#{:02x}{:02x}{:02x}".format(*color), edgecolor="#888888", label=name)
        for name, color in zip(classes.names, classes.colors, strict=True)
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 11), fontsize=9, frameon=False)
    return figure


# ------------------------------------------------------------------------------------------------- tables


def _cell(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return "–" if math.isnan(number) else f"{number:.{digits}f}"


def _seconds(value: Any) -> str:
    number = _number(value)
    if math.isnan(number):
        return "–"
    return f"{number:.2f}" if number < 10 else f"{number:.0f}"


def _milliseconds(value: Any) -> str:
    number = _number(value)
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
            *(_cell(method["metrics"].get(key)) for key, _ in SUMMARY_METRICS),
            _milliseconds(method.get("ms_per_image")),
            "–" if method.get("oracle") else _seconds(method.get("train_seconds")),  # nothing is trained
        ]
        for method in methods
    ]


def noise_rows(results: dict[str, Any], methods: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """mIoU per method (rows) and noise level (columns)."""
    levels = results.get("noise", [])
    header = ["method", *(level["name"] for level in levels)]
    rows = [
        [str(method["name"]), *(_cell(method["noise"].get(level["key"], {}).get("miou")) for level in levels)]
        for method in methods
    ]
    return header, rows


def per_class_rows(results: dict[str, Any], methods: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Clean IoU per class (rows) and method (columns): where a method confuses classes it shows here."""
    names = ClassSpec.from_dict(results["dataset"]["classes"]).names
    header = ["class", *(str(method["name"]) for method in methods)]
    rows = [
        [name, *(_cell(method["metrics"].get("per_class", {}).get(name, {}).get("iou"), 2) for method in methods)]
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
        f"Best on the clean test split: **{best['name']}** ({_family(best)}), mIoU {_cell(best['metrics']['miou'])}, "
        f"pixel accuracy {_cell(best['metrics']['pixel_accuracy'])}."
    ]
    # the best of every family, in the order the families appear in the ranking
    leaders = [
        next(m for m in honest if m["family"] == family) for family in dict.fromkeys(m["family"] for m in honest)
    ]
    others = [method for method in leaders if method is not best]
    if others:
        listed = "; ".join(f"{m['name']} ({_family(m)}) {_cell(m['metrics']['miou'])}" for m in others)
        sentences.append(f"Best of the other families: {listed}.")
    gaussian = [level for level in results.get("noise", []) if level["kind"] == "gaussian" and level["amount"] > 0]
    if gaussian:
        worst = max(gaussian, key=lambda level: level["amount"])
        changes = []
        for method in leaders:
            clean = _number(method["metrics"].get("miou"))
            noisy = _number(method["noise"].get(worst["key"], {}).get("miou"))
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
            pairs.append((_number(oracle["metrics"]["miou"]), _number(fitted["metrics"]["miou"])))
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
    lines.append(f"Seed: {results.get('seed')}; total time {_seconds(results.get('total_seconds'))} s")
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


def _notes(results: dict[str, Any]) -> list[str]:
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


def _checkpoint_lines(results: dict[str, Any]) -> list[str]:
    return [f"{method['name']}: {method['checkpoint']}" for method in results["methods"] if method.get("checkpoint")]


# ----------------------------------------------------------------------------------------------- markdown


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    align = ["---" if index < numeric_from else "---:" for index in range(len(header))]
    lines = ["| " + " | ".join(escape(cell) for cell in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], figures: dict[str, str]) -> str:
    """``report.md``: the same content as the HTML report, with the figures linked by relative path."""
    honest, oracles = honest_methods(results), oracle_methods(results)
    parts = [f"# pixelwise comparison: {results['dataset'].get('name', '')}", ""]
    parts += [" ".join(summary_sentences(results)), ""]
    parts += [f"- {line}" for line in dataset_lines(results)] + [""]
    parts += ["## Scores on the clean test split", ""]
    parts += [_markdown_table(SCORE_HEADER, score_rows(honest), numeric_from=2), ""]
    if oracles:
        parts += ["### Oracle upper bounds (use the test truth; not comparable with the rows above)", ""]
        parts += [_markdown_table(SCORE_HEADER, score_rows(oracles), numeric_from=2), ""]
    if "methods" in figures:
        parts += [f"![scores per method]({figures['methods']})", ""]
    if len(results.get("noise", [])) > 1:
        parts += ["## Robustness to noise (mIoU)", ""]
        header, rows = noise_rows(results, honest + oracles)
        parts += [_markdown_table(header, rows, numeric_from=1), ""]
        if "noise" in figures:
            parts += [f"![mIoU against noise]({figures['noise']})", ""]
    if "examples" in figures:
        parts += ["## Examples", "", f"![image, truth and each method's prediction]({figures['examples']})", ""]
    if "examples_oracle" in figures:
        parts += ["### Oracle bounds on the same images (labelled with the test truth)", ""]
        parts += [f"![image, truth and each oracle bound]({figures['examples_oracle']})", ""]
    parts += ["## IoU per class (clean)", ""]
    header, rows = per_class_rows(results, honest)
    parts += [_markdown_table(header, rows, numeric_from=1), ""]
    parts += ["## How this was measured", ""] + [f"- {note}" for note in _notes(results)] + [""]
    checkpoints = _checkpoint_lines(results)
    if checkpoints:
        parts += ["## Trained models", "", "Reuse one with `pixelwise predict CHECKPOINT IMAGES`:", ""]
        parts += [f"- `{line.split(': ', 1)[1]}` ({line.split(': ', 1)[0]})" for line in checkpoints] + [""]
    versions = results.get("versions") or {}
    if versions:
        parts += ["## Versions", "", ", ".join(f"{name} {version}" for name, version in versions.items()), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #fafafa; }
main { max-width: 1220px; margin: 0 auto; padding: 24px 32px 48px; background: white; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.summary { font-size: 1.05em; line-height: 1.5; background: #f3f6fa; padding: 10px 14px; border-radius: 6px; }
ul.facts { color: #444; line-height: 1.5; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.92em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; }
th { background: #f0f0f0; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: 700; }
tr.oracle td { color: #666; font-style: italic; }
.badge { display: inline-block; font-size: 0.75em; font-style: normal; font-weight: 700; color: white;
         background: #888; border-radius: 3px; padding: 0 5px; margin-left: 6px; letter-spacing: 0.04em; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
.scroll { overflow-x: auto; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
footer { color: #777; font-size: 0.85em; margin-top: 2em; }
"""


def _html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric_from: int,
    best_columns: Sequence[int] = (),
    oracle_rows: bool = False,
    first_column_html: Sequence[str] | None = None,
) -> str:
    """An HTML table; the best value of each column in ``best_columns`` is bold (highest, or lowest for ms)."""
    best: dict[int, float] = {}
    for column in best_columns:
        values = [_number(row[column].replace("–", "nan")) for row in rows]
        finite = [value for value in values if not math.isnan(value)]
        if finite:
            best[column] = min(finite) if "ms" in header[column] else max(finite)
    # <wbr> after underscores lets long method names wrap in narrow columns instead of widening the table
    head = "".join(
        f'<th class="{"num" if index >= numeric_from else ""}">{html.escape(cell).replace("_", "_<wbr>")}</th>'
        for index, cell in enumerate(header)
    )
    body = []
    for row_index, row in enumerate(rows):
        cells = []
        for index, cell in enumerate(row):
            classes = ["num"] if index >= numeric_from else []
            if index in best and cell != "–" and float(cell) == best[index]:
                classes.append("best")
            content = first_column_html[row_index] if index == 0 and first_column_html else html.escape(cell)
            cells.append(f'<td class="{" ".join(classes)}">{content}</td>')
        body.append(f'<tr class="{"oracle" if oracle_rows else ""}">{"".join(cells)}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _method_cell(method: dict[str, Any]) -> str:
    color = FAMILY_COLORS.get(method["family"], "#777777")
    badge = '<span class="badge">ORACLE</span>' if method.get("oracle") else ""
    return f'<span class="swatch" style="background:{color}"></span>{html.escape(str(method["name"]))}{badge}'


def _html_figure(data: bytes, alt: str, caption: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _bold_markdown(text: str) -> str:
    """``**x**`` from the summary sentences -> <strong>x</strong>, everything else escaped."""
    pieces = html.escape(text).split("**")
    return "".join(f"<strong>{piece}</strong>" if index % 2 else piece for index, piece in enumerate(pieces))


def render_html(results: dict[str, Any], figures: dict[str, bytes]) -> str:
    """``report.html``: one self-contained page (inline CSS, figures as base64 PNG, no scripts, no links out)."""
    honest, oracles = honest_methods(results), oracle_methods(results)
    title = f"pixelwise comparison: {results['dataset'].get('name', '')}"
    score_columns = list(range(2, 2 + len(SUMMARY_METRICS) + 1))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="summary">{_bold_markdown(" ".join(summary_sentences(results)))}</p>',
        '<ul class="facts">' + "".join(f"<li>{html.escape(line)}</li>" for line in dataset_lines(results)) + "</ul>",
        "<h2>Scores on the clean test split</h2>",
        _html_table(
            SCORE_HEADER,
            score_rows(honest),
            numeric_from=2,
            best_columns=score_columns,
            first_column_html=[_method_cell(method) for method in honest],
        ),
    ]
    if oracles:
        parts += [
            "<h3>Oracle upper bounds <span class='badge'>ORACLE</span></h3>",
            "<p>These label each region with the <em>test</em> truth. They show how well a partition follows the "
            "objects, not what the method can do on new images: never compare them with the rows above.</p>",
            _html_table(
                SCORE_HEADER,
                score_rows(oracles),
                numeric_from=2,
                oracle_rows=True,
                first_column_html=[_method_cell(method) for method in oracles],
            ),
        ]
    if "methods" in figures:
        parts.append(
            _html_figure(
                figures["methods"],
                "bar chart of the scores per method",
                "Clean test-set scores, best honest method at the top; hatched bars are oracle upper bounds.",
            )
        )
    if len(results.get("noise", [])) > 1:
        header, rows = noise_rows(results, honest + oracles)
        parts += ["<h2>Robustness to noise</h2>"]
        if "noise" in figures:
            parts.append(
                _html_figure(
                    figures["noise"],
                    "mIoU against noise level, one line per method",
                    "mIoU on the test images with added noise (clean at 0); thick lines are CNNs (dashed: "
                    "adversarial). Oracle bounds, if any, have their own row, each dotted in the colour of its "
                    "classical method: they show the partition itself breaking up under noise.",
                )
            )
        parts.append(
            _html_table(
                header,
                rows,
                numeric_from=1,
                first_column_html=[_method_cell(method) for method in honest + oracles],
            )
        )
    if "examples" in figures:
        parts += [
            "<h2>Examples</h2>",
            _html_figure(
                figures["examples"],
                "grid of test images, their truth and each method's prediction",
                "Test images (the last rows with noise added), the truth and every method's prediction, "
                "in the dataset's class colours.",
            ),
        ]
    if "examples_oracle" in figures:
        parts += [
            "<h3>Oracle bounds on the same images <span class='badge'>ORACLE</span></h3>",
            _html_figure(
                figures["examples_oracle"],
                "grid of the same test images with each oracle bound",
                "The classical partitions with each region labelled by the test truth: how well the regions "
                "follow the objects, not a prediction any method could make.",
            ),
        ]
    header, rows = per_class_rows(results, honest)
    parts += ["<h2>IoU per class (clean)</h2>", _html_table(header, rows, numeric_from=1)]
    parts += [
        "<h2>How this was measured</h2>",
        "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in _notes(results)) + "</ul>",
    ]
    checkpoints = [method for method in results["methods"] if method.get("checkpoint")]
    if checkpoints:
        parts += [
            "<h2>Trained models</h2>",
            "<p>Kept beside this report; reuse one with <code>pixelwise predict CHECKPOINT IMAGES</code>:</p><ul>",
            *(f"<li><code>{html.escape(m['checkpoint'])}</code> ({html.escape(m['name'])})</li>" for m in checkpoints),
            "</ul>",
        ]
    versions = results.get("versions") or {}
    footer = ", ".join(f"{name} {version}" for name, version in versions.items())
    parts += [f"<footer>{html.escape(results.get('created', ''))} · {html.escape(footer)}</footer>"]
    parts += ["</main></body></html>"]
    return "\n".join(parts)
