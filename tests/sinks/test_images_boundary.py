"""A model trained with the boundary class: its masks, overlays and probabilities name only the user's classes
(evaluate reads them against the truth), while its objects are parted by the ring."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_mask, write_mask
from pixelwise.data.sources import ImageSource
from pixelwise.instances.boundary import BOUNDARY_NAME, add_boundary, with_boundary_class
from pixelwise.jobs import Item, Job, run_job
from pixelwise.sinks import PredictionBand, make_sink
from pixelwise.sinks.objects import InstanceSink

CLASSES = ClassSpec(("background", "nucleus"), ((0, 0, 0), (0, 128, 0)))
MODEL_CLASSES = with_boundary_class(CLASSES)


def touching_squares() -> tuple[np.ndarray, np.ndarray]:
    """Two 10 x 10 objects side by side (one blob in a plain mask) and their labels."""
    objects = np.zeros((16, 26), np.int32)
    objects[3:13, 3:13] = 1
    objects[3:13, 13:23] = 2
    return (objects > 0).astype(np.uint8), objects


def ringed_task(labels: np.ndarray) -> Callable[..., Iterator[PredictionBand]]:
    """A network that predicts ``labels`` (with the ring), with probabilities of 0.9 on the class predicted."""

    def task(
        item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
    ) -> Iterator[PredictionBand]:
        for top in range(0, labels.shape[0], 5):
            band = labels[top : top + 5]
            values = np.full((MODEL_CLASSES.num_classes, *band.shape), 0.05, np.float32)
            np.put_along_axis(values, band[None].astype(np.int64), 0.9, axis=0)
            yield PredictionBand(top, band, probabilities=values if probabilities else None)
        progress(1)

    return task


def test_masks_overlays_and_probabilities_fold_the_ring_and_objects_use_it(cli: Any, tmp_path: Path) -> None:
    mask, objects = touching_squares()
    predicted = add_boundary(mask, objects, boundary=2)
    image = tmp_path / "cells.png"
    Image.fromarray((mask * 200).astype(np.uint8)).save(image)
    out = tmp_path / "out"
    sinks = [
        InstanceSink(out=out, probabilities=True, min_size=0, inputs={"cells": image}),
        make_sink("mask"),
        make_sink("overlay"),
        make_sink("probabilities"),
    ]
    job = Job([Item(image, "cells")], out, sinks, classes=MODEL_CLASSES, settings={})
    run_job(job, ringed_task(predicted), quiet=True)

    # the mask: the user's two classes, the ring given back to the nucleus (so it is the plain mask again)
    assert np.array_equal(read_mask(out / "cells.png", CLASSES), mask)
    # evaluate scores it against a truth of the user's classes, with no complaint about a third class
    truth = tmp_path / "truth"
    (truth / "masks").mkdir(parents=True)
    write_mask(truth / "masks" / "cells.png", mask, CLASSES)
    CLASSES.save(truth / "classes.yaml")
    scored = cli("evaluate", out, truth, "--instances")
    assert scored.returncode == 0, scored.stderr
    assert "found/true" in scored.stdout and "2/1" in scored.stdout  # two nuclei found where the mask has one blob
    # the probabilities: K - 1, summing to 1, the ring's share on the nucleus
    probabilities = np.load(out / "probabilities" / "cells.npy").astype(np.float32)
    assert probabilities.shape == (2, 16, 26)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=2e-3)
    assert (probabilities.argmax(axis=0) == mask).all()
    # the overlay: painted in the user's colours only (the ring's colour appears nowhere)
    overlay = np.asarray(Image.open(out / "overlays" / "cells.png"))[:16, :26].astype(int)
    ring_colour = np.array(MODEL_CLASSES.colors[2])
    expected = np.rint(0.55 * 200 + 0.45 * np.array(CLASSES.colors[1])).astype(int)
    assert (np.abs(overlay[mask == 1] - expected).max(axis=1) <= 1).all()
    assert not (np.abs(overlay - np.rint(0.45 * ring_colour)).max(axis=2) <= 1).any()
    # the objects: parted by the ring, grown back over it, named by the user's class
    with open(out / "instances" / "objects.csv", newline="") as file:
        objects_rows = list(csv.DictReader(file))
    assert [(row["label"], row["class"], row["area"]) for row in objects_rows] == [
        ("1", "nucleus", "100"),
        ("2", "nucleus", "100"),
    ]
    assert BOUNDARY_NAME not in (out / "instances" / "cells.geojson").read_text()
