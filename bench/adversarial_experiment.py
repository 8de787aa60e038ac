"""Hung et al.'s table, in shape, on our data: supervised vs + adversarial vs + adversarial + semi-supervised.

For each built-in dataset, each label regime (1/8 of the training labels, all labels) and each seed, train
the same segmenter with ``pixelwise.train.loop.fit`` three ways and score its best checkpoint (by validation
mIoU) on the test split:

- ``supervised``: cross-entropy only;
- ``adversarial``: + λ_adv · BCE(D(P), 1) on the labeled images (the paper's ``L_adv`` row);
- ``adversarial+semi``: + λ_semi · CE against argmax P_u where σ(D(P_u)) > T_semi, + λ_adv,u · BCE(D(P_u), 1)
  on unlabeled images: only at 1/8, where the other 7/8 of the training images lose their masks.

Every run of a regime makes the same number of segmenter iterations (Hung et al. train a fixed 20,000): at 1/8
of the labels the loop's "epoch" is 8× shorter, so the epoch count is scaled to keep the iterations equal.
The seed sets the weights, the order, the augmentation and which images keep their labels; the three
methods of one seed share that labeled subset, so their differences are paired.

Each finished run writes ``results/<run>.json`` at once; a restart skips them and resumes a run cut off
mid-way from its ``last.pt``. The table (mean ± sample std over seeds) goes to stdout and ``table.md``.
The defaults (800 scenes, 200 iterations, 32² crops) fit the 30 runs into about 45 minutes on two cores
shared with other jobs; results and their reading are in docs/results.md.

    .venv/bin/python bench/adversarial_experiment.py --out /tmp/adversarial-experiment
    .venv/bin/python bench/adversarial_experiment.py --out /tmp/probe --datasets shapes --seeds 0 \\
        --methods supervised --fractions 0.125     # one run, to time it
    # other settings as a named variant beside the main runs (own files, own column, paired differences)
    .venv/bin/python bench/adversarial_experiment.py --out /tmp/adversarial-experiment --methods adversarial+semi \\
        --fractions 0.125 --variant smooth0.5 --set discriminator_real_smoothing=0.5
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the paper's rows: L_adv on labeled images only; the unlabeled images (with λ_adv,u = 0.001) come in with L_semi
METHODS: dict[str, dict[str, float]] = {
    "supervised": {"adversarial_weight": 0.0, "semi_weight": 0.0},
    "adversarial": {"adversarial_weight": 0.01, "semi_weight": 0.0, "adversarial_weight_unlabeled": 0.0},
    "adversarial+semi": {"adversarial_weight": 0.01, "semi_weight": 0.1},
    # the published negative control (semi-supervised without the adversarial term); not run by default
    "semi": {"adversarial_weight": 0.0, "semi_weight": 0.1},
}

# built-in dataset options: scene side and number of training scenes (val and test: a quarter each)
DATASETS: dict[str, dict[str, Any]] = {
    "fashion": {"size": 64, "count": 800},
    "shapes": {"size": 48, "count": 800},
}


@dataclass(frozen=True)
class Run:
    dataset: str
    fraction: float
    method: str
    seed: int
    variant: str = ""  # a label for runs with other settings (--variant), kept apart in files and table

    @property
    def label(self) -> str:
        return f"{self.method} [{self.variant}]" if self.variant else self.method

    @property
    def name(self) -> str:
        method = f"{self.method}.{self.variant}" if self.variant else self.method
        return f"{self.dataset}-{_fraction_label(self.fraction).replace('/', 'of')}-{method}-seed{self.seed}"


def _fraction_label(fraction: float) -> str:
    return "all" if fraction >= 1 else f"1/{round(1 / fraction)}"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for runs/, results/ and table.md")
    parser.add_argument("--datasets", default="fashion,shapes")
    parser.add_argument("--fractions", default="0.125,1.0", help="labeled fractions")
    parser.add_argument("--methods", default="supervised,adversarial,adversarial+semi")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=200, help="segmenter iterations per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-size", type=int, default=32)
    parser.add_argument("--model", default="unet-small")
    parser.add_argument("--adversarial-weight", type=float, default=0.01)
    parser.add_argument("--semi-weight", type=float, default=0.1)
    parser.add_argument("--semi-threshold", type=float, default=0.2)
    parser.add_argument("--semi-start", type=float, default=0.25, help="warm-up, as a fraction of the iterations")
    parser.add_argument("--discriminator-lr", type=float, default=1e-4)
    parser.add_argument("--discriminator-base-channels", type=int, default=64)
    parser.add_argument("--discriminator-real-label", type=float, default=1.0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other TrainConfig field")
    parser.add_argument("--val-images", type=int, default=50, help="validation images (best checkpoint)")
    parser.add_argument("--test-images", type=int, default=200, help="test images scored")
    # one thread: on a shared 2-core machine two threads per process ran 5-10x slower (spinning on contention)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--variant", default="", help="name for runs with non-default settings: own files, own table column"
    )
    parser.add_argument("--table-only", action="store_true", help="only print the table of all finished runs")
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, run: Run, labeled_count: int) -> Any:
    from pixelwise.train.config import TrainConfig

    method = dict(METHODS[run.method])
    if method["adversarial_weight"] > 0:
        method["adversarial_weight"] = args.adversarial_weight
    if method["semi_weight"] > 0:
        method["semi_weight"] = args.semi_weight
    # the loop's epoch is one pass over the *labeled* images: scale the epochs to a fixed iteration count
    per_epoch = max(labeled_count // args.batch_size, 1)
    epochs = max(1, math.ceil(args.iterations / per_epoch))
    extra = dict(item.split("=", 1) for item in args.set)
    return TrainConfig().replace(
        model=args.model,
        epochs=epochs,
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        patience=0,  # a fixed budget for every method, as in the paper; the best checkpoint is still kept
        seed=run.seed,
        labeled_fraction=run.fraction,
        semi_threshold=args.semi_threshold,
        semi_start=int(args.semi_start * epochs * per_epoch),
        discriminator_lr=args.discriminator_lr,
        discriminator_base_channels=args.discriminator_base_channels,
        discriminator_real_label=args.discriminator_real_label,
        **method,
        **extra,
    )


def _test_scores(checkpoint: Path, test: Any, count: int) -> dict[str, Any]:
    from pixelwise.inference.predictor import Predictor
    from pixelwise.metrics import Evaluator

    predictor = Predictor.load(checkpoint)
    evaluator = Evaluator(test.classes)
    for index in range(min(count, len(test))):
        sample = test[index]
        evaluator.add(predictor.predict_labels(sample.image), sample.mask)
    result = evaluator.result()
    return {key: result[key] for key in ("miou", "pixel_accuracy", "mean_dice", "boundary_f1")}


def _mean(values: list[float]) -> float:
    finite = [value for value in values if value is not None and math.isfinite(value)]
    return statistics.fmean(finite) if finite else math.nan


def _run_one(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    from pixelwise.data.builtin import load_builtin
    from pixelwise.train.data import split_labeled
    from pixelwise.train.loop import fit
    from pixelwise.train.run_files import LAST_FILE

    options = DATASETS[run.dataset]
    train = load_builtin(run.dataset, "train", **options)
    val_folder = load_builtin(run.dataset, "val", **options)
    val = [val_folder[index] for index in range(min(args.val_images, len(val_folder)))]
    test = load_builtin(run.dataset, "test", **options)
    labeled, _ = split_labeled(len(train), run.fraction, seed=run.seed)
    config = _config(args, run, len(labeled))
    run_dir = args.out / "runs" / run.name
    resume = (run_dir / LAST_FILE).is_file()
    started = time.perf_counter()
    result = fit(config, train, val, out_dir=run_dir, resume=resume, force=not resume, progress=False)
    seconds = time.perf_counter() - started
    history = result.history
    # the adversarial game's state over the second half of the run, for the report
    late = history[len(history) // 2 :]
    diagnostics = {
        key: _mean([record.get(f"train_{key}", math.nan) for record in late])
        for key in ("discriminator_accuracy_real", "discriminator_accuracy_fake", "semi_fraction", "semi_loss")
    }
    return {
        "run": run.name,
        "dataset": run.dataset,
        "fraction": run.fraction,
        "method": run.label,
        "seed": run.seed,
        "labeled_images": len(labeled),
        "train_images": len(train),
        "iterations": history[-1]["iteration"] if history else 0,
        "best_epoch": result.best_epoch,
        "best_val_miou": result.best_score,
        "test": _test_scores(result.best_checkpoint, test, args.test_images),
        "train_seconds": round(seconds, 1),
        "late_training": diagnostics,
        "config": config.to_dict(),
        "resumed": resume,
    }


def _columns(results: list[dict[str, Any]]) -> list[str]:
    """The method labels present: the paper's rows in its order, then the variants."""
    present = {record["method"] for record in results}
    return [name for name in METHODS if name in present] + sorted(present - set(METHODS))


def _table(results: list[dict[str, Any]], methods: list[str]) -> str:
    """Markdown: one row per (dataset, labels), one column per method, test mIoU ×100 as mean ± std (n)."""
    groups: dict[tuple[str, float], dict[str, list[float]]] = {}
    for record in results:
        key = (record["dataset"], record["fraction"])
        groups.setdefault(key, {}).setdefault(record["method"], []).append(100 * record["test"]["miou"])
    lines = [
        "| dataset | labels | " + " | ".join(methods) + " |",
        "| --- | --- | " + " | ".join("---" for _ in methods) + " |",
    ]
    for (dataset, fraction), by_method in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
        cells = []
        for method in methods:
            values = by_method.get(method, [])
            if not values:
                cells.append("—")
            elif len(values) == 1:
                cells.append(f"{values[0]:.1f} (n=1)")
            else:
                cells.append(f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f} (n={len(values)})")
        lines.append(f"| {dataset} | {_fraction_label(fraction)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired(results: list[dict[str, Any]], methods: list[str]) -> str:
    """Per seed differences against supervised (same labeled subset), test mIoU points, mean ± std."""
    by_key = {(r["dataset"], r["fraction"], r["method"], r["seed"]): 100 * r["test"]["miou"] for r in results}
    lines = []
    for dataset, fraction in sorted({(r["dataset"], r["fraction"]) for r in results}):
        for method in methods:
            if method == "supervised":
                continue
            seeds = sorted(s for (d, f, m, s) in by_key if (d, f, m) == (dataset, fraction, method))
            deltas = [
                by_key[(dataset, fraction, method, seed)] - by_key[(dataset, fraction, "supervised", seed)]
                for seed in seeds
                if (dataset, fraction, "supervised", seed) in by_key
            ]
            if deltas:
                spread = f" ± {statistics.stdev(deltas):.1f}" if len(deltas) > 1 else ""
                listed = ", ".join(f"{delta:+.1f}" for delta in deltas)
                lines.append(
                    f"- {dataset}, {_fraction_label(fraction)}: {method} − supervised = "
                    f"{statistics.fmean(deltas):+.1f}{spread} (per seed {listed})"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    methods = [name for name in args.methods.split(",") if name]
    unknown = sorted(set(methods) - set(METHODS)) + sorted(set(args.datasets.split(",")) - set(DATASETS))
    if unknown:
        print(f"unknown method or dataset {unknown}", file=sys.stderr)
        return 2
    from pixelwise.files import atomic_path

    results_dir = args.out / "results"
    # seed-major order: a cut-off experiment still has whole tables for its first seeds
    runs = [
        Run(dataset, float(fraction), method, int(seed), args.variant)
        for seed in args.seeds.split(",")
        for dataset in args.datasets.split(",")
        for fraction in args.fractions.split(",")
        for method in methods
        # semi-supervised needs images without labels: none are left when every label is kept
        if not (METHODS[method]["semi_weight"] > 0 and float(fraction) >= 1)
    ]
    if not args.table_only:
        import torch

        torch.set_num_threads(args.threads)
        for number, run in enumerate(runs, 1):
            path = results_dir / f"{run.name}.json"
            if path.is_file():
                continue
            started = time.perf_counter()
            record = _run_one(args, run)
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(record, indent=1))
            print(
                f"[{number}/{len(runs)}] {run.name}: test mIoU {100 * record['test']['miou']:.1f}, "
                f"{time.perf_counter() - started:.0f} s, "
                f"D acc real/fake {record['late_training']['discriminator_accuracy_real']:.2f}/"
                f"{record['late_training']['discriminator_accuracy_fake']:.2f}, "
                f"trusted {record['late_training']['semi_fraction']:.2f}",
                flush=True,
            )
    # the table covers every finished run in --out: the main runs and any variants next to them
    results = [json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))]
    columns = _columns(results)
    table = _table(results, columns) + "\n\nPaired differences (same seed, same labeled images):\n\n"
    table += _paired(results, columns) + "\n"
    print(table)
    with atomic_path(args.out / "table.md") as tmp:
        tmp.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
