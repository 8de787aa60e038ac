"""Issue 2's promise, end to end: a dataset folder nobody has seen (grey 8-bit PNG and 16-bit TIFF images,
index masks, a classes.yaml) goes through `classical --fit` and `evaluate`, and the scores equal what an
independent implementation (torchmetrics) computes from the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassJaccardIndex


@pytest.mark.parametrize("method", ["multi_otsu", "kmeans"])
def test_classical_then_evaluate_on_an_unseen_folder(tmp_path: Path, cli, unseen_dataset: Path, method: str) -> None:  # type: ignore[no-untyped-def]
    data = unseen_dataset
    predictions = tmp_path / "pred"
    options = ["--set", "classes=3"] if method == "multi_otsu" else ["--set", "clusters=3"]
    result = cli("classical", method, data, predictions, "--fit", data, "--split", "test", "-q", *options)
    assert result.returncode == 0, result.stderr
    scores_file = tmp_path / "scores.json"
    result = cli("evaluate", predictions, data, "--split", "test", "--json", scores_file)
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
