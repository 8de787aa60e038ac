"""compare on a dataset whose truth has instances: object scores per method in results.json, and the
"Objects" section in both renderings of the report (none for a dataset without instances)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.comparison import ComparisonResults, Method, compare
from pixelwise.data.classes import ClassSpec

CLASSES = ClassSpec(("background", "cell"), ((0, 0, 0), (255, 0, 0)))


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 32×32 images of 2 to 4 separate squares, with masks and the squares' label images."""
    root = tmp_path_factory.mktemp("data") / "counted"
    for folder in ("images", "masks", "instances"):
        (root / folder).mkdir(parents=True)
    CLASSES.save(root / "classes.yaml")
    for index in range(12):
        objects = np.zeros((32, 32), np.int32)
        for number in range(2 + index % 3):
            top, left = 2 + 15 * (number // 2), 2 + 15 * (number % 2)
            objects[top : top + 11, left : left + 11] = number + 1
        Image.fromarray(np.where(objects > 0, 200, 30).astype(np.uint8)).save(root / "images" / f"i{index}.png")
        Image.fromarray((objects > 0).astype(np.uint8)).save(root / "masks" / f"i{index}.png")
        tifffile.imwrite(root / "instances" / f"i{index}.tif", objects)
    return root


class Background(Method):
    """Finds nothing: every object missed."""

    name, family, description = "background", "classical", "class 0 everywhere"

    def fit(self, train: Any, val: Any, out_dir: Path) -> None:
        pass

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        return np.zeros(image.shape[:2], np.uint8)


class Truth(Background):
    """The test truth itself (an oracle): every object found, exactly."""

    name, family, description = "truth-oracle", "oracle", "the true mask"

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        assert truth is not None
        return truth


def test_object_scores_per_method_and_their_report_section(counted: Path, tmp_path: Path) -> None:
    results = compare(counted, methods=[Background(), Truth()], out_dir=tmp_path, noise=[], progress=False)
    stored = json.loads((tmp_path / "results.json").read_text())
    tested = stored["dataset"]["test_limit"]
    assert stored["dataset"]["instances"] == tested  # every test image has its label image
    truth = results.method("truth-oracle").instances
    nothing = results.method("background").instances
    assert truth is not None and nothing is not None
    assert truth.pq == 1.0 and truth.aji == 1.0 and truth.count_error == 0.0 and truth.count_true > tested
    assert nothing.count_predicted == 0 and nothing.count_error == -1.0 and nothing.f1 == 0.0
    assert ComparisonResults.from_dict(stored).method("truth-oracle").instances == truth
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    section = markdown.split("## Objects (clean)")[1].split("## ")[0]
    assert f"| truth-oracle | {truth.count_true} / {truth.count_true} | +0.0% | 1.000 |" in section
    assert f"| background ⚠ | 0 / {truth.count_true} | -100.0% | 0.000 |" in section  # it segments nothing
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Objects (clean)</h2>" in page and "aggregated Jaccard index" in page


def test_a_truth_without_instances_has_no_object_section(tmp_path: Path) -> None:
    from pixelwise.data.builtin import export_builtin

    shapes = export_builtin("shapes", tmp_path / "shapes", size=32, count=8)
    results = compare(shapes, methods=[Background()], out_dir=tmp_path / "out", noise=[], progress=False)
    assert results.dataset.instances == 0 and results.methods[0].instances is None
    assert "Objects" not in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
