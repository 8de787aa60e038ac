"""A method that predicts one class everywhere is no result: the summary never names it best, the tables mark it.

On a tumour task a threshold that calls every pixel background scores mIoU 0.48 from the background alone;
the report once named it best over a network that did find tumour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.report import render_html, render_markdown, summary_sentences, write_report
from pixelwise.report.content import degenerate, honest_methods
from pixelwise.report.figures import plot_methods
from pixelwise.report.results import ComparisonResults, MethodResult

CLASSES = ClassSpec(("background", "tumour"), ((240, 240, 240), (200, 30, 30)))


def _method(name: str, family: str, matrix: list[list[int]]) -> dict[str, Any]:
    """A method record with the scores that follow from its confusion matrix (rows truth, columns prediction)."""
    confusion = np.asarray(matrix, dtype=float)
    hits = np.diag(confusion)
    iou = hits / (confusion.sum(0) + confusion.sum(1) - hits)
    per_class = {
        name: {
            "iou": float(iou[k]),
            "dice": 0.5,
            "accuracy": 0.5,
            "boundary_f1": 0.1,
            "support": int(confusion[k].sum()),
        }
        for k, name in enumerate(CLASSES.names)
    }
    metrics = {
        "miou": float(iou.mean()),
        "mean_dice": 0.5,
        "pixel_accuracy": float(hits.sum() / confusion.sum()),
        "boundary_f1": 0.1,
        "per_class": per_class,
        "confusion_matrix": matrix,
    }
    noise = {"clean": {"miou": metrics["miou"]}}
    return {"name": name, "family": family, "oracle": False, "description": name, "metrics": metrics, "noise": noise}


def tumour_results() -> dict[str, Any]:
    return {
        "dataset": {"name": "tumours", "classes": CLASSES.to_dict(), "splits": {"train": 8, "val": 2, "test": 2}},
        "seed": 0,
        "noise": [{"key": "clean", "name": "clean", "kind": "gaussian", "amount": 0.0}],
        "budget": {},
        "methods": [
            _method("otsu", "classical", [[960, 0], [40, 0]]),  # background everywhere: mIoU 0.48
            _method("cnn", "cnn", [[900, 60], [20, 20]]),  # finds some tumour
            _method("kmeans", "classical", [[955, 5], [40, 0]]),  # some tumour predicted, none of it right
        ],
        "examples": [],
    }


def test_degenerate_names_the_reason() -> None:
    otsu, cnn, kmeans = map(MethodResult.from_dict, tumour_results()["methods"])
    assert degenerate(otsu) == "predicts 'background' on every test pixel"
    assert degenerate(kmeans) == "finds only 'background' (IoU below 0.01 on tumour)"
    assert degenerate(cnn) is None


def test_the_summary_never_names_a_degenerate_method_best() -> None:
    results = tumour_results()
    results["methods"][1] = _method("cnn", "cnn", [[700, 260], [30, 10]])  # a poor CNN: mIoU 0.39 < otsu's 0.48
    text = " ".join(summary_sentences(ComparisonResults.from_dict(results)))
    assert "Best on the clean test split: **cnn**" in text
    assert "**otsu** predicts 'background' on every test pixel, so its mIoU 0.480 is no result" in text
    assert [method.name for method in honest_methods(ComparisonResults.from_dict(results))] == ["cnn", "otsu", "kmeans"]
    results["methods"] = results["methods"][:1]
    assert summary_sentences(ComparisonResults.from_dict(results))[0].startswith(
        "No method segments the test images: **otsu** predicts"
    )


def test_the_tables_and_the_chart_mark_it(tmp_path: Path) -> None:
    raw = tumour_results()
    raw["methods"][1] = _method("cnn", "cnn", [[700, 260], [30, 10]])
    results = ComparisonResults.from_dict(raw)
    markdown = render_markdown(results, {})
    assert "| otsu ⚠ | classical (labeler fitted on train) | 0.480 |" in markdown
    assert "⚠ otsu predicts 'background' on every test pixel: its scores measure the class balance" in markdown
    page = render_html(results, {})
    scores = page.split("<h2>Scores on the clean test split</h2>")[1].split("</table>")[0]
    otsu_row = next(row for row in scores.split("<tr") if ">otsu<" in row)
    assert 'class="degenerate"' in otsu_row and "⚠ ONE CLASS" in otsu_row and "best" not in otsu_row
    # the highest mIoU and pixel accuracy are otsu's, yet the bold ones are the CNN's
    cnn_row = next(row for row in scores.split("<tr") if ">cnn<" in row)
    assert cnn_row.count("best") >= 2
    figure = plot_methods(results)
    assert [tick.get_text() for tick in figure.axes[0].get_yticklabels()] == [
        "cnn",
        "otsu ⚠",
        "kmeans ⚠",
    ]  # cnn at the top


def test_compare_on_a_real_tumour_like_folder_flags_otsu(tmp_path: Path, cli: Any) -> None:
    """Faint spots on a noisy background: Otsu splits the noise, both halves are mostly background, and the
    fitted labeler calls everything background. The command's table and report say so."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tumours"
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    (root / "classes.yaml").write_text("classes: [background, tumour]\n")
    for index in range(14):
        mask = np.zeros((32, 32), np.uint8)
        row, col = rng.integers(4, 26, 2)
        mask[row : row + 3, col : col + 3] = 1
        image = rng.uniform(0.3, 0.7, mask.shape) + 0.05 * mask
        Image.fromarray((255 * image).astype(np.uint8)).save(root / "images" / f"t{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"t{index:02d}.png")
    result = cli("compare", root, "-o", tmp_path / "report", "-m", "otsu", "--sigmas", "0", "--salt-pepper", "", "-q")
    assert result.returncode == 0, result.stderr
    assert "otsu ⚠" in result.stdout and "⚠ otsu predicts 'background' on every test pixel" in result.stdout
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "No method segments the test images: **otsu** predicts 'background' on every test pixel" in markdown
    assert "Best on the clean test split" not in markdown


def test_write_report_with_a_degenerate_method(tmp_path: Path) -> None:
    written = write_report(ComparisonResults.from_dict(tumour_results()), tmp_path)
    assert {"methods", "markdown", "html"} <= set(written)
