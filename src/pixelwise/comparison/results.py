"""``results.json``: what a comparison found, in a stable schema that the report (and you) read.

``results.json`` (``format: "pixelwise-compare/1"``; NaN is written as null)::

    format            "pixelwise-compare/1"
    created           ISO 8601 time of the run (UTC)
    dataset           {name, description, root, classes (ClassSpec.to_dict()), in_channels,
                       splits {train, val, test: number of images}, test_limit}
    seed              seed of the noise (and of the split and the training)
    noise             [{key, name, kind: "gaussian" | "salt_pepper", amount}], "clean" first
    budget            the training options every CNN shared ({} without CNNs)
    settings          {train, dataset}: the training settings and dataset options the caller gave (--set,
                      --model-option, --data-option, --config, flags), as given; the report lists them
    versions          {pixelwise, python, numpy, scikit-image, torch, ...}
    torch_threads     torch's intra-op threads during the run (null without networks; classical methods: 1)
    total_seconds     wall time of the whole comparison
    methods           [{name, family, oracle (bool), description,
                        metrics        Evaluator.result() on the clean test split (per_class, confusion_matrix...),
                        noise          {level key: {miou, mean_dice, pixel_accuracy, boundary_f1}},
                        ms_per_image   median prediction time per clean test image (predict only),
                        ms_per_image_mean,
                        train_seconds  time of fit (labeler fitting or network training),
                        train_images   training images fit used (0 for an oracle),
                        checkpoint     path of the trained model relative to the report folder, or null}]
    examples          [{stem, index, noise (level key), noise_name, image, truth,
                        predictions {method name: PNG path}}]; paths relative to the report folder
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixelwise.files import atomic_path
from pixelwise.noise import NoiseLevel
from pixelwise.versions import library_versions

FORMAT = "pixelwise-compare/1"
# summary scores kept per noise level (the clean level keeps the whole Evaluator result as well)
LEVEL_METRICS = ("miou", "mean_dice", "pixel_accuracy", "boundary_f1")


def results_document(
    *,
    dataset: dict[str, Any],
    seed: int,
    levels: Sequence[NoiseLevel],
    networks: Sequence[Any],
    total_seconds: float,
    methods: list[dict[str, Any]],
    examples: list[dict[str, Any]],
    settings: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The content of ``results.json`` (the schema above); ``networks``: the network methods run (their
    ``config`` is the shared training budget)."""
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset,
        "seed": seed,
        "noise": [{"key": lv.key, "name": lv.name, "kind": lv.kind, "amount": lv.amount} for lv in levels],
        "budget": _budget(networks[0].config) if networks else {},
        "settings": settings or {"train": {}, "dataset": {}},
        "versions": library_versions(torch=bool(networks)),
        "torch_threads": _torch_threads() if networks else None,
        "total_seconds": total_seconds,
        "methods": methods,
        "examples": examples,
    }


def method_record(
    method: Any,
    *,
    metrics: dict[str, Any],
    per_level: dict[str, dict[str, Any]],
    timings: Sequence[float],
    train_seconds: float,
    out: Path,
) -> dict[str, Any]:
    """One entry of ``methods``: a fitted ``Method``, its clean ``Evaluator`` result, its summary per noise
    level and its clean prediction times in seconds."""
    return {
        "name": method.name,
        "family": method.family,
        "oracle": method.oracle,
        "description": method.description,
        "metrics": metrics,
        "noise": per_level,
        "ms_per_image": 1000 * statistics.median(timings),
        "ms_per_image_mean": 1000 * statistics.fmean(timings),
        "train_seconds": train_seconds,
        "train_images": method.train_images,
        "checkpoint": _relative(method.checkpoint, out) if method.checkpoint else None,
    }


def write_results(results: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write ``out/results.json`` (strict JSON: NaN as null, atomically); return what was written."""
    from pixelwise.metrics import json_ready

    ready: dict[str, Any] = json_ready(results)
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(ready, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return ready


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _budget(config: Any) -> dict[str, Any]:
    """The training settings every network shared (the per-method weights are in each description)."""
    per_method = {"adversarial_weight", "semi_weight", "fixmatch_weight", "semi_trust", "semi_threshold"}
    return {key: value for key, value in config.to_dict().items() if key not in per_method}


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())
