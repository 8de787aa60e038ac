"""The report's figures (matplotlib, drawn without pyplot): scores per method, mIoU against noise, examples."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.classical.labeling import ORACLE_SUFFIX
from pixelwise.files import atomic_path
from pixelwise.report.content import (
    FAMILY_COLORS,
    FAMILY_LABELS,
    SUMMARY_METRICS,
    degenerate,
    honest_methods,
    oracle_methods,
    table_name,
)
from pixelwise.report.legend import legend_colors
from pixelwise.report.results import ComparisonResults, MethodResult


def save_figure(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=figure.dpi, bbox_inches="tight", facecolor="white")
    return path


def plot_methods(results: ComparisonResults) -> Any:
    """Horizontal bars: one panel per summary metric, one bar per method (honest first, then oracle)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    methods = honest_methods(results) + oracle_methods(results)
    height = 0.8 + 0.32 * len(methods)
    figure = Figure(figsize=(12.5, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, len(SUMMARY_METRICS), sharey=True)
    positions = np.arange(len(methods))[::-1]  # best at the top
    for axis, (key, label) in zip(axes, SUMMARY_METRICS, strict=True):
        values = [float(getattr(method.metrics, key)) for method in methods]
        for position, method, value in zip(positions, methods, values, strict=True):
            if math.isnan(value):
                axis.text(0.01, position, "n/a", va="center", fontsize=8, color="#666666")
                continue
            oracle = method.oracle
            axis.barh(
                position,
                value,
                color=FAMILY_COLORS.get(method.family, "#777777"),
                hatch="///" if oracle else None,
                edgecolor="white" if oracle else None,
                alpha=0.75 if oracle else 0.35 if degenerate(method) else 1.0,  # a degenerate score, faded
                height=0.75,
            )
            axis.text(min(value, 1.0) + 0.01, position, f"{value:.2f}", va="center", fontsize=8)
        axis.set_xlim(0, 1.12)
        axis.set_title(label, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
        axis.set_axisbelow(True)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
    # a degenerate method (one class everywhere) keeps its mark here too
    axes[0].set_yticks(positions, [table_name(method) for method in methods], fontsize=9)
    families = [family for family in FAMILY_LABELS if any(method.family == family for method in methods)]
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


def _method_styles(methods: Sequence[MethodResult]) -> dict[str, dict[str, Any]]:
    """Line styles that match the bar chart: CNNs in their family colour and thick, classical methods in
    distinct cool colours, and each oracle dotted in the colour of the classical method it bounds."""
    cool = ["#4c78a8", "#54a24b", "#b279a2", "#72b7b2", "#9d755d", "#2f4b7c", "#88a61b", "#665191", "#1b9e77"]
    styles: dict[str, dict[str, Any]] = {}
    classical = [method for method in methods if method.family == "classical"]
    for index, method in enumerate(classical):
        styles[method.name] = {"color": cool[index % len(cool)], "linestyle": "-", "linewidth": 1.4, "marker": "."}
    for method in methods:
        family = method.family
        if family in ("cnn", "adversarial"):
            styles[method.name] = {
                "color": FAMILY_COLORS[family],
                "linestyle": "-" if family == "cnn" else "--",
                "linewidth": 2.6,
                "marker": "o",
            }
        elif family == "oracle":
            partner = styles.get(method.name.removesuffix(ORACLE_SUFFIX), {})
            styles[method.name] = {
                "color": partner.get("color", FAMILY_COLORS["oracle"]),
                "linestyle": ":",
                "linewidth": 1.4,
                "marker": "x",
            }
        elif method.name not in styles:
            styles[method.name] = {"color": "#777777", "linestyle": "-", "linewidth": 1.4, "marker": "."}
    return styles


def noise_curves(results: ComparisonResults, kind: str, metric: str = "miou") -> dict[str, list[tuple[float, float]]]:
    """Per method, (amount, score) along one noise kind, starting at the clean score (amount 0).

    >>> from pixelwise.data.classes import ClassSpec
    >>> from pixelwise.noise import NoiseLevel
    >>> from pixelwise.report.results import DatasetSummary, LevelScores
    >>> otsu = MethodResult(name="otsu", family="classical",
    ...                     noise={"clean": LevelScores(miou=0.5), "gaussian-0.1": LevelScores(miou=0.25)})
    >>> results = ComparisonResults(dataset=DatasetSummary(classes=ClassSpec.default(2)), methods=(otsu,),
    ...                             noise=(NoiseLevel("gaussian", 0.0), NoiseLevel("gaussian", 0.1)))
    >>> noise_curves(results, "gaussian")
    {'otsu': [(0.0, 0.5), (0.1, 0.25)]}
    """
    levels = sorted(
        (level for level in results.noise if level.amount == 0 or level.kind == kind), key=lambda level: level.amount
    )
    curves = {}
    for method in results.methods:
        points = []
        for level in levels:
            scores = method.noise.get(level.key)
            value = math.nan if scores is None else float(getattr(scores, metric))
            if not math.isnan(value):
                points.append((float(level.amount), value))
        curves[method.name] = points
    return curves


def plot_noise(results: ComparisonResults) -> Any:
    """mIoU against noise: a column per noise kind in the sweep, a line per method.

    With oracle results a second row shows them on their own (each dotted in the colour of its classical
    method): the honest classical scores are often too low to fall further, while the oracle rows show the
    partition itself breaking up under noise.
    """
    from matplotlib.figure import Figure

    kinds = [
        kind
        for kind in ("gaussian", "salt_pepper")
        if any(level.kind == kind and level.amount > 0 for level in results.noise)
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
                points = curves[method.name]
                if points:
                    amounts, scores = zip(*points, strict=True)
                    axis.plot(amounts, scores, label=method.name, **styles[method.name])
            ticks = sorted({0.0, *(level.amount for level in results.noise if level.kind == kind)})
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


def plot_examples(results: ComparisonResults, out_dir: Path, *, oracle: bool = False) -> Any:
    """The qualitative grid: a row per example (clean, then noisy), image | truth | each method.

    ``oracle=False`` shows the honest methods, ``oracle=True`` the oracle bounds: a grid of their own, so that
    neither gets too small to read and no reader takes one for the other.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    classes = results.dataset.classes
    methods = oracle_methods(results) if oracle else honest_methods(results)
    examples = results.examples
    columns = 2 + len(methods)
    tile = 1.25
    figure = Figure(figsize=(tile * columns + 0.6, tile * len(examples) + 1.0), dpi=100, layout="constrained")
    axes = np.asarray(figure.subplots(len(examples), columns, squeeze=False))
    titles = ["image", "truth", *(method.name for method in methods)]
    for row, example in enumerate(examples):
        image = read_example(out_dir / example.image)
        panels: list[np.ndarray | None] = [image, classes.colorize(read_example(out_dir / example.truth))]
        for method in methods:
            saved = example.predictions.get(method.name)
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
        axes[row, 0].set_ylabel(f"{example.stem}\n{example.noise_name}", fontsize=8)
    # light colours outlined: a (240, 240, 240) swatch would vanish on the white figure
    handles = [
        Patch(facecolor=face, edgecolor=edge, linewidth=1.0, label=name)
        for name, (face, edge) in zip(classes.names, legend_colors(classes.colors), strict=True)
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 11), fontsize=9, frameon=False)
    return figure
