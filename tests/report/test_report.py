"""The report from a hand-made results dict: files, self-containment, oracle separation, exact numbers."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import write_mask
from pixelwise.report import (
    ComparisonResults,
    noise_curves,
    plot_examples,
    render_html,
    render_markdown,
    summary_sentences,
    write_report,
)

CLASSES = ClassSpec(("background", "disc", "square"), ((0, 0, 0), (230, 25, 75), (60, 180, 75)))
LEVELS = [
    {"key": "clean", "name": "clean", "kind": "gaussian", "amount": 0.0},
    {"key": "gaussian-0.2", "name": "gaussian σ=0.2", "kind": "gaussian", "amount": 0.2},
    {"key": "salt_pepper-0.1", "name": "salt&pepper p=0.1", "kind": "salt_pepper", "amount": 0.1},
]


def _method(name: str, family: str, scores: tuple[float | None, ...], **extra: Any) -> dict[str, Any]:
    clean, gaussian, salt = scores
    per_class = {
        name: {"iou": None if clean is None else clean, "dice": 0.5, "accuracy": 0.5, "boundary_f1": 0.4, "support": 10}
        for name in CLASSES.names
    }
    return {
        "name": name,
        "family": family,
        "oracle": family == "oracle",
        "description": f"{name} for the test",
        "metrics": {
            "miou": clean,
            "mean_dice": None if clean is None else clean + 0.05,
            "pixel_accuracy": 0.9,
            "boundary_f1": 0.4,
            "boundary_tolerance": 2.0,
            "per_class": per_class,
        },
        "noise": {
            "clean": {"miou": clean},
            "gaussian-0.2": {"miou": gaussian},
            "salt_pepper-0.1": {"miou": salt},
        },
        "ms_per_image": extra.get("ms", 1.5),
        "train_seconds": extra.get("train", 0.25),
        "checkpoint": extra.get("checkpoint"),
    }


def make_report_inputs(folder: Path) -> dict[str, Any]:
    """A results dict as compare writes it, with one example row saved as PNGs under ``folder``."""
    image = np.zeros((16, 16), dtype=np.uint8)
    image[4:12, 4:12] = 200
    truth = np.zeros((16, 16), dtype=np.uint8)
    truth[4:12, 4:12] = 2
    predictions = {"otsu": np.where(truth > 0, 1, 0), "cnn": truth, "otsu-oracle": truth}
    (folder / "examples").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / "examples/000-a-clean-image.png")
    write_mask(folder / "examples/000-a-clean-truth.png", truth, CLASSES)
    for name, labels in predictions.items():
        write_mask(folder / f"examples/000-a-clean-{name}.png", labels.astype(np.uint8), CLASSES)
    return {
        "format": "pixelwise-compare/1",
        "created": "2025-01-01T00:00:00+00:00",
        "dataset": {
            "name": "toy",
            "description": "hand-made",
            "root": str(folder),
            "classes": CLASSES.to_dict(),
            "in_channels": 1,
            "splits": {"train": 8, "val": 2, "test": 3},
            "test_limit": 3,
        },
        "seed": 0,
        "noise": LEVELS,
        "budget": {"epochs": 1},
        "versions": {"pixelwise": "0.1.0", "python": "3.11"},
        "total_seconds": 12.5,
        "methods": [
            _method("otsu", "classical", (0.4, 0.1, 0.2), ms=0.8, train=0.01),
            _method("kmeans", "classical", (None, None, None)),
            _method("cnn", "cnn", (0.8123, 0.6, 0.7), ms=12.3456, train=30.0, checkpoint="models/cnn/best.pt"),
            _method("otsu-oracle", "oracle", (0.95, 0.5, 0.6)),
        ],
        "examples": [
            {
                "stem": "a",
                "index": 0,
                "noise": "clean",
                "noise_name": "clean",
                "image": "examples/000-a-clean-image.png",
                "truth": "examples/000-a-clean-truth.png",
                "predictions": {name: f"examples/000-a-clean-{name}.png" for name in predictions},
            }
        ],
    }


def test_write_report_writes_every_file_and_the_html_is_self_contained(tmp_path: Path) -> None:
    results = ComparisonResults.from_dict(make_report_inputs(tmp_path))
    written = write_report(results, tmp_path)
    assert set(written) == {"methods", "noise", "examples", "examples_oracle", "markdown", "html"}
    for name in ("methods", "noise", "examples", "examples_oracle"):
        assert written[name] == tmp_path / "figures" / f"{name.replace('_', '-')}.png"
        with Image.open(written[name]) as picture:
            assert picture.format == "PNG" and picture.width > 300
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 4
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as picture:
            picture.verify()
    # nothing to fetch: no links, scripts or style sheets from elsewhere
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "<script" not in page
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "![scores per method](figures/methods.png)" in markdown
    assert "![mIoU against noise](figures/noise.png)" in markdown
    assert not list(tmp_path.rglob("*.tmp*")), "a temporary file was left behind"


def test_oracle_results_are_kept_apart_and_named(tmp_path: Path) -> None:
    results = ComparisonResults.from_dict(make_report_inputs(tmp_path))
    markdown = render_markdown(results, {})
    honest_part, oracle_part = markdown.split("### Oracle upper bounds")
    assert "otsu-oracle" not in honest_part.split("## Scores on the clean test split")[1]
    assert "| otsu-oracle | oracle (labels from the test truth) | 0.950 |" in oracle_part
    page = render_html(results, {})
    honest_html, oracle_html = page.split("<h3>Oracle upper bounds")
    assert "otsu-oracle" not in honest_html.split("<h2>Scores on the clean test split</h2>")[1]
    assert 'class="oracle"' in oracle_html and "ORACLE" in oracle_html


def test_tables_are_sorted_and_formatted_exactly(tmp_path: Path) -> None:
    markdown = render_markdown(ComparisonResults.from_dict(make_report_inputs(tmp_path)), {})
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    # honest methods by clean mIoU, the unscored one last; ms and seconds rounded to what they can tell
    assert rows[2] == "| cnn | CNN | 0.812 | 0.862 | 0.900 | 0.400 | 12.3 | 30 |"
    assert rows[3] == "| otsu | classical (labeler fitted on train) | 0.400 | 0.450 | 0.900 | 0.400 | 0.80 | 0.01 |"
    assert rows[4].startswith("| kmeans | classical (labeler fitted on train) | – | – |")
    assert "| cnn | 0.812 | 0.600 | 0.700 |" in markdown  # the noise table: clean, σ 0.2, s&p 0.1
    assert "`models/cnn/best.pt` (cnn)" in markdown


def test_best_values_are_bold_in_html(tmp_path: Path) -> None:
    page = render_html(ComparisonResults.from_dict(make_report_inputs(tmp_path)), {})
    honest = page.split("<h3>Oracle upper bounds")[0]
    assert '<td class="num best">0.812</td>' in honest  # highest mIoU
    assert '<td class="num best">0.80</td>' in honest  # lowest ms / image
    assert '<td class="num best">12.3</td>' not in honest
    oracle_row = page.split("<h3>Oracle upper bounds")[1].split("</tr>")[1]
    assert oracle_row.endswith('<td class="num">–</td>')  # an oracle trains nothing: no training time


def test_noise_curves_start_clean_and_follow_one_kind(tmp_path: Path) -> None:
    results = ComparisonResults.from_dict(make_report_inputs(tmp_path))
    assert noise_curves(results, "gaussian")["otsu"] == [(0.0, 0.4), (0.2, 0.1)]
    assert noise_curves(results, "salt_pepper")["cnn"] == [(0.0, 0.8123), (0.1, 0.7)]
    assert noise_curves(results, "gaussian")["kmeans"] == []


def test_summary_is_computed_from_the_numbers(tmp_path: Path) -> None:
    results = make_report_inputs(tmp_path)
    text = " ".join(summary_sentences(ComparisonResults.from_dict(results)))
    assert "Best on the clean test split: **cnn** (CNN), mIoU 0.812, pixel accuracy 0.900." in text
    assert "Best of the other families: otsu (classical) 0.400." in text
    assert "σ = 0.2, mIoU goes cnn 0.81 → 0.60; otsu 0.40 → 0.10." in text
    # otsu's partition: 0.95 with the test truth, 0.40 with the fitted labeler
    assert "reach mIoU 0.95, against 0.40 with the labelers fitted" in text
    results["methods"][2]["metrics"]["miou"] = 0.3  # the CNN falls behind Otsu: the summary follows
    text = " ".join(summary_sentences(ComparisonResults.from_dict(results)))
    assert "**otsu** (classical)" in text and "Best of the other families: cnn (CNN) 0.300." in text


def test_example_grid_shows_truth_in_the_dataset_colours_with_a_legend(tmp_path: Path) -> None:
    results = ComparisonResults.from_dict(make_report_inputs(tmp_path))
    figure = plot_examples(results, tmp_path)
    axes = figure.axes
    assert len(axes) == 2 + 3  # image, truth, the three honest methods
    truth_shown = np.asarray(axes[1].images[0].get_array())
    truth = np.zeros((16, 16), dtype=np.uint8)
    truth[4:12, 4:12] = 2
    np.testing.assert_array_equal(truth_shown, CLASSES.colorize(truth))
    assert [text.get_text() for text in figure.legends[0].get_texts()] == list(CLASSES.names)
    assert [axis.get_title() for axis in axes] == ["image", "truth", "cnn", "otsu", "kmeans"]
    assert "n/a" in [text.get_text() for text in axes[4].texts]  # kmeans saved no example
    oracle = plot_examples(results, tmp_path, oracle=True)
    assert [axis.get_title() for axis in oracle.axes] == ["image", "truth", "otsu-oracle"]
