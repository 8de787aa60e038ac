"""Issue 2's promise, end to end: a dataset folder nobody has seen (grey 8-bit PNG and 16-bit TIFF images,
index masks, a classes.yaml) goes through `classical --fit` and `evaluate`, and the scores equal what an
independent implementation (torchmetrics) computes from the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from torchmetrics.classification import MulticlassJaccardIndex


def write_unseen_dataset(root: Path) -> None:
    """Bright blobs on a dark background, 3 classes (background, cell, nucleus), 12 images of 40x48."""
    rng = np.random.default_rng(11)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text(
        "classes:\n  - background\n  - {name: cell, color: [0, 200, 0]}\n  - {name: nucleus, color: [200, 0, 0]}\n"
    )
    rows, cols = np.mgrid[:40, :48]
    for index in range(12):
        mask = np.zeros((40, 48), np.uint8)
        centre_row, centre_col = rng.integers(12, 28), rng.integers(12, 36)
        distance = np.hypot(rows - centre_row, cols - centre_col)
        mask[distance < 10] = 1
        mask[distance < 4] = 2
        levels = np.array([0.1, 0.5, 0.9])[mask] + rng.normal(0, 0.04, mask.shape)
        if index % 2:
            # a 16-bit microscope-style TIFF using a small part of its range
            tifffile.imwrite(root / "images" / f"cell_{index:02d}.tif", (800 + 2000 * levels).astype(np.uint16))
        else:
            Image.fromarray((255 * levels.clip(0, 1)).astype(np.uint8)).save(root / "images" / f"cell_{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"cell_{index:02d}.png")


@pytest.mark.parametrize("method", ["multi_otsu", "kmeans"])
def test_classical_then_evaluate_on_an_unseen_folder(tmp_path: Path, cli, method: str) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "unseen"
    write_unseen_dataset(data)
    predictions = tmp_path / "pred"
    options = ["--set", "classes=3"] if method == "multi_otsu" else ["--set", "clusters=3"]
    result = cli("classical", method, data, predictions, "--fit", data, "--split", "test", "-q", *options)
    assert result.returncode == 0, result.stderr
    scores_file = tmp_path / "scores.json"
    result = cli("evaluate", predictions, data, "--json", scores_file)
    assert result.returncode == 0, result.stderr
    scores = json.loads(scores_file.read_text())

    # independent check: read the very files back with Pillow, score them with torchmetrics
    stems = sorted(path.stem for path in predictions.glob("*.png"))
    assert stems and scores["num_images"] == len(stems)
    predicted = np.stack([np.asarray(Image.open(predictions / f"{stem}.png")) for stem in stems])
    truth = np.stack([np.asarray(Image.open(data / "masks" / f"{stem}.png")) for stem in stems])
    reference = MulticlassJaccardIndex(3, average="macro", ignore_index=255)
    expected = float(reference(torch.from_numpy(predicted).long(), torch.from_numpy(truth).long()))
    assert scores["miou"] == pytest.approx(expected, abs=1e-6)
    # the blobs are easy: an honest fitted labeler must find them
    assert scores["miou"] > 0.6
