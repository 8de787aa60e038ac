"""Class colours a reader can tell apart: light swatches outlined, overlays with a legend, and the settings a
comparison was given listed in its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import to_hex

from pixelwise.data.classes import ClassSpec
from pixelwise.report import ComparisonResults, dataset_lines, plot_examples, render_html
from pixelwise.report.legend import OUTLINE, hex_color, with_legend

LIGHT = ClassSpec(("background", "cell", "nucleus"), ((240, 240, 240), (0, 0, 255), (255, 255, 0)))


def test_an_overlay_legend_names_the_classes_it_shows() -> None:
    labels = np.zeros((300, 400), np.uint8)
    labels[100:200, 100:200] = 2  # no class 1
    picture = np.full((300, 400, 3), 90, np.uint8)
    shown = with_legend(picture, labels, LIGHT)
    assert shown.shape[1] == 400 and shown.shape[0] > 300
    np.testing.assert_array_equal(shown[:300], picture)
    band = shown[300:]

    def pixels(color: tuple[int, ...]) -> int:
        return int((band == color).all(axis=2).sum())

    assert pixels((240, 240, 240)) > 50 and pixels((255, 255, 0)) > 50
    assert pixels((0, 0, 255)) == 0  # absent from the labels, absent from the legend
    assert pixels(OUTLINE) > 20  # the light swatches have their outline


def test_a_narrow_overlay_gets_a_legend_wide_enough() -> None:
    labels = np.array([[0, 1], [2, 2]], np.uint8)
    shown = with_legend(np.zeros((2, 2, 3), np.uint8), labels, LIGHT)
    assert shown.shape[1] > 40
    np.testing.assert_array_equal(shown[:2, 2:], 255)  # the picture padded white on the right


def one_example(folder: Path) -> dict[str, Any]:
    """Results of one method on one saved example, the classes ``LIGHT``."""
    from PIL import Image

    from pixelwise.data.io import write_mask

    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 2
    Image.fromarray(truth * 100).save(folder / "image.png")
    write_mask(folder / "truth.png", truth, LIGHT)
    write_mask(folder / "otsu.png", truth, LIGHT)
    per_class = {name: {"iou": 1.0, "support": 16} for name in LIGHT.names}
    metrics = {"miou": 1.0, "pixel_accuracy": 1.0, "per_class": per_class}
    method = {"name": "otsu", "family": "classical", "metrics": metrics, "noise": {}}
    example = {"stem": "a", "image": "image.png", "truth": "truth.png", "predictions": {"otsu": "otsu.png"}}
    return {"dataset": {"name": "light", "classes": LIGHT.to_dict()}, "methods": [method], "examples": [example]}


def test_light_colours_are_outlined_in_the_figure_legend_and_the_html(tmp_path: Path) -> None:
    results = ComparisonResults.from_dict(one_example(tmp_path))
    legend = plot_examples(results, tmp_path).legends[0]
    edges = {
        text.get_text(): to_hex(patch.get_edgecolor())
        for text, patch in zip(legend.get_texts(), legend.get_patches(), strict=True)
    }
    assert edges == {"background": hex_color(OUTLINE), "cell": "#0000ff", "nucleus": hex_color(OUTLINE)}
    page = render_html(results, {})
    per_class = page.split("<h2>IoU per class (clean)</h2>")[1]
    assert f"background:#f0f0f0;border:1px solid {hex_color(OUTLINE)};" in per_class
    assert 'background:#0000ff;"' in per_class  # a dark colour needs no outline


def test_the_settings_given_are_listed_in_the_report(tmp_path: Path) -> None:
    results: dict[str, Any] = {
        "dataset": {"name": "shapes", "classes": LIGHT.to_dict(), "splits": {"train": 8}},
        "methods": [],
        "budget": {"model": "unet-small", "epochs": 2, "lr": 0.004, "weight_decay": 0.001, "amp": False},
        "settings": {
            "train": {"epochs": 2, "weight_decay": 0.001, "model_options": {"width": 8, "depth": 3}},
            "dataset": {"count": 50, "size": 32},
        },
    }
    lines = dataset_lines(ComparisonResults.from_dict(results))
    assert lines[0] == "Dataset: shapes; options count 50, size 32"
    training = next(line for line in lines if line.startswith("CNN training: "))
    assert training == (
        "CNN training: model unet-small, epochs 2, lr 0.004, weight_decay 0.001, model_options {width=8, depth=3}"
    )
    assert "amp" not in training  # neither given nor one of the settings always shown


def test_compare_lists_the_settings_it_was_given(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """--set, --model-option and --data-option travel through results.json into the report's lines."""
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    settings = ["--set", "crop_size=32", "--set", "batch_size=4", "--set", "weight_decay=0.001"]
    options = ["--model-option", "width=4", "--model-option", "depth=2", "--data-option", "count=8"]
    result = cli(
        "compare", "shapes", "-o", tmp_path / "r", "-m", "cnn", "--epochs", "1", *settings, *options,
        "--data-option", "size=32", "--sigmas", "0", "--salt-pepper", "", "--examples", "0", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    given = json.loads((tmp_path / "r" / "results.json").read_text())["settings"]
    assert given == {
        "train": {"crop_size": 32, "batch_size": 4, "weight_decay": 0.001, "epochs": 1,
                  "model_options": {"width": 4, "depth": 2}},
        "dataset": {"count": 8, "size": 32},
    }  # fmt: skip
    markdown = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "- Dataset: shapes (" in markdown and "; options count 8, size 32" in markdown
    assert "weight_decay 0.001, model_options {width=4, depth=2}" in markdown
