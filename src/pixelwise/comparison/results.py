"""``results.json``: filling the records of ``pixelwise.report.results`` (where its schema is) and writing them.

``results_document`` gathers a run into a ``ComparisonResults``, ``method_record`` one method's
``MethodResult``; ``write_results`` writes ``ComparisonResults.to_dict()`` as strict JSON.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.files import atomic_path
from pixelwise.metrics import Scores
from pixelwise.noise import NoiseLevel
from pixelwise.report.results import FORMAT, ComparisonResults, DatasetSummary, Example, LevelScores, MethodResult
from pixelwise.versions import library_versions

if TYPE_CHECKING:
    from pixelwise.instances.scores import InstanceScores

__all__ = ["FORMAT", "method_record", "results_document", "write_results"]


def results_document(
    *,
    dataset: DatasetSummary,
    seed: int,
    levels: Sequence[NoiseLevel],
    networks: Sequence[Any],
    total_seconds: float,
    methods: Sequence[MethodResult],
    examples: Sequence[Example],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> ComparisonResults:
    """A run's results; ``networks``: the network methods run (their ``config`` is the shared training budget)."""
    return ComparisonResults(
        format=FORMAT,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        dataset=dataset,
        seed=seed,
        noise=tuple(levels),
        budget=_budget(networks[0].config) if networks else {},
        settings=settings or {"train": {}, "dataset": {}},
        versions=library_versions(torch=bool(networks)),
        torch_threads=_torch_threads() if networks else None,
        total_seconds=total_seconds,
        methods=tuple(methods),
        examples=tuple(examples),
    )


def method_record(
    method: Any,
    *,
    metrics: Scores,
    per_level: Mapping[str, Scores],
    timings: Sequence[float],
    train_seconds: float,
    out: Path,
    instances: InstanceScores | None = None,
) -> MethodResult:
    """A fitted ``Method``'s result: its clean scores, its summary per noise level, its clean prediction
    times (``timings``, in seconds) and its object scores (when the test truth has instances)."""
    return MethodResult(
        name=method.name,
        family=method.family,
        oracle=method.oracle,
        description=method.description,
        metrics=metrics,
        noise={key: LevelScores.of(scores) for key, scores in per_level.items()},
        ms_per_image=1000 * statistics.median(timings),
        ms_per_image_mean=1000 * statistics.fmean(timings),
        train_seconds=train_seconds,
        train_images=method.train_images,
        checkpoint=_relative(method.checkpoint, out) if method.checkpoint else None,
        instances=instances,
    )


def write_results(results: ComparisonResults, out: Path) -> ComparisonResults:
    """Write ``out/results.json`` (strict JSON: NaN as null, atomically); return ``results``."""
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return results


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
