"""Does adversarial training help segmentation where labels are scarce? Paired arms over seeds (issue 14).

Hung et al. (BMVC 2018) showed the adversarial gain as semi-supervised learning; this runs their recipe,
with the three blind spots of our first attempt fixed (D keeps a spatial map, sees unlabeled predictions as
fakes, sees fakes masked like the reals), beside two non-adversarial semi-supervised baselines:

======================  ======================================================================================
arm                     what it adds to cross-entropy on the labeled crops
======================  ======================================================================================
``supervised``          nothing
``adversarial``         λ_adv · BCE(D(P), 1) on labeled crops (λ_adv 0.01)
``adversarial+semi``    + λ_semi · CE(S(X_u), argmax P_u) where σ(D(P_u)) > 0.2 (λ_semi 0.1, from 25% of the
                        iterations) + λ_adv,u · BCE(D(P_u), 1) (0.001): the paper's full method
``self-training``       λ_semi · CE(S(X_u), argmax P_u) where max P_u > 0.95, same weight and start, no D
``fixmatch``            CE of the strong view against the weak view's argmax where max P_weak > 0.95 (weight 1)
======================  ======================================================================================

Step 1 (the regime): ``supervised`` with all labels and with each candidate fraction (``--candidates``), on
the scan seeds, at the same iteration count. The arms run at the largest fraction whose mean gap (all − fraction)
is at least ``--min-gap`` mIoU points (if none, the smallest: labels are then not the bottleneck and no arm can
show much); the choice is written to ``plan.json`` once and kept.

Step 2 (the arms): every arm at that fraction for each seed, plus ``supervised`` on all labels. The seed fixes
the labeled subset, the segmenter's initial weights and every labeled batch (each loader draws from its own
stream, ``train.data.on_own_stream``), so arms of one seed are paired. Each run is scored on the whole test
split with its final weights (``last.pt``; no model selection).

Criterion, written down before the runs: the adversarial claim holds here if ``adversarial+semi`` −
``supervised`` is at least +1 mIoU point on average over the seeds *and* its 95% t-interval excludes 0.

Each finished run writes ``results/<run>.json`` atomically; a restart skips those and resumes a run cut off
mid-way from its ``last.pt``. ``table.md`` collects every finished run. One process, one thread:

    nohup nice -n 5 .venv/bin/python bench/adversarial_experiment.py --out /work/experiments/adversarial \\
        > /work/experiments/adversarial/log.txt 2>&1 &
    .venv/bin/python bench/adversarial_experiment.py --out /work/experiments/adversarial --table-only
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

# the arms' own settings; everything else is common (see _config)
ARMS: dict[str, dict[str, Any]] = {
    "supervised": {},
    "adversarial": {"adversarial_weight": 0.01, "adversarial_weight_unlabeled": 0.0},
    "adversarial+semi": {"adversarial_weight": 0.01, "semi_weight": 0.1, "semi_threshold": 0.2},
    "self-training": {"semi_weight": 0.1, "semi_trust": "softmax", "semi_threshold": 0.95},
    "fixmatch": {"fixmatch_weight": 1.0, "fixmatch_threshold": 0.95},
}
SEMI_ARMS = {"adversarial+semi", "self-training"}  # L_semi starts after a warm-up, as in the paper

# built-in dataset options: the scene side and the number of training scenes (val and test: a quarter each)
DATASETS: dict[str, dict[str, Any]] = {
    "fashion": {"size": 96, "count": 800},
    "shapes": {"size": 96, "count": 800},
}


@dataclass(frozen=True)
class Run:
    dataset: str
    fraction: float
    arm: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{fraction_label(self.fraction).replace('/', 'of')}-{self.arm}-seed{self.seed}"


def fraction_label(fraction: float) -> str:
    return "all" if fraction >= 1 else f"1/{round(1 / fraction)}"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for runs/, results/, plan.json, table.md")
    parser.add_argument("--datasets", default="fashion,shapes")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds of the arms")
    parser.add_argument("--scan-seeds", default="0,1", help="seeds of step 1")
    parser.add_argument("--candidates", default="0.03125,0.015625,0.0078125", help="label fractions step 1 tries")
    parser.add_argument("--min-gap", type=float, default=5.0, help="mIoU points all labels must win by")
    parser.add_argument("--fraction", type=float, default=None, help="skip step 1: run the arms at this fraction")
    parser.add_argument("--iterations", type=int, default=480, help="segmenter iterations per run")
    parser.add_argument("--epochs", type=int, default=10, help="the iterations fall into this many epochs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-size", type=int, default=96)
    parser.add_argument(
        "--discriminator-base-channels", type=int, default=32, help="64 in the paper; 32 halves D's cost"
    )
    parser.add_argument("--val-images", type=int, default=50, help="validation images per epoch (curves only)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig field, all runs"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table-only", action="store_true", help="only write the table of the finished runs")
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, run: Run) -> Any:
    from pixelwise.train.config import TrainConfig

    arm = dict(ARMS[run.arm])
    if run.arm in SEMI_ARMS:
        arm["semi_start"] = args.iterations // 4  # 5,000 of 20,000 in the official code
    extra = dict(item.split("=", 1) for item in args.set)
    return TrainConfig().replace(
        model="unet",
        encoder="efficientnet-lite0",
        encoder_weights="imagenet",
        epochs=args.epochs,
        iterations_per_epoch=max(1, args.iterations // args.epochs),
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        patience=0,  # a fixed budget for every arm; the final weights are scored
        seed=run.seed,
        labeled_fraction=run.fraction,
        discriminator_base_channels=args.discriminator_base_channels,
        **arm,
        **extra,
    )


def _test_scores(checkpoint: Path, test: Any) -> dict[str, Any]:
    from pixelwise.inference.predictor import Predictor
    from pixelwise.metrics import Evaluator

    predictor = Predictor.load(checkpoint)
    evaluator = Evaluator(test.classes)
    for index in range(len(test)):
        sample = test[index]
        evaluator.add(predictor.predict_labels(sample.image), sample.mask)
    result = evaluator.result().to_dict()
    return {key: result[key] for key in ("miou", "pixel_accuracy", "mean_dice", "boundary_f1")}


def _mean(values: list[Any]) -> float:
    finite = [float(value) for value in values if isinstance(value, (int, float)) and math.isfinite(value)]
    return statistics.fmean(finite) if finite else math.nan


DIAGNOSTICS = (
    "train_discriminator_loss_real",
    "train_discriminator_loss_fake",
    "train_discriminator_accuracy_real",
    "train_discriminator_accuracy_fake",
    "train_semi_fraction",
    "train_fixmatch_fraction",
)
FINAL = (
    "pseudo_trusted_fraction",
    "pseudo_accuracy_trusted",
    "pseudo_accuracy_untrusted",
    "pseudo_auroc_discriminator",
    "pseudo_auroc_softmax",
)


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
    config = _config(args, run)
    run_dir = args.out / "runs" / run.name
    resume = (run_dir / LAST_FILE).is_file()
    started = time.perf_counter()
    result = fit(config, train, val, out_dir=run_dir, resume=resume, force=not resume, progress=False)
    seconds = time.perf_counter() - started
    history = result.history
    late = history[len(history) // 2 :]  # the game's state over the second half of the run
    return {
        "run": run.name,
        "dataset": run.dataset,
        "fraction": run.fraction,
        "arm": run.arm,
        "seed": run.seed,
        "labeled_images": len(labeled),
        "train_images": len(train),
        "test_images": len(test),
        "iterations": history[-1]["iteration"] if history else 0,
        "test": _test_scores(result.last_checkpoint, test),
        "final_val_miou": history[-1].get("val_miou") if history else None,
        "late_training": {key: _mean([record.get(key) for record in late]) for key in DIAGNOSTICS},
        "final_epoch": {key: history[-1].get(key, math.nan) for key in FINAL} if history else {},
        "train_seconds": round(seconds, 1),
        "config": config.to_dict(),
        "resumed": resume,
    }


def _finished(results_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))]


def _execute(args: argparse.Namespace, runs: list[Run], label: str) -> None:
    from pixelwise.files import atomic_path

    for number, run in enumerate(runs, 1):
        path = args.out / "results" / f"{run.name}.json"
        if path.is_file():
            continue
        started = time.perf_counter()
        record = _run_one(args, run)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
        late, final = record["late_training"], record["final_epoch"]
        print(
            f"[{label} {number}/{len(runs)}] {run.name}: test mIoU {100 * record['test']['miou']:.1f}, "
            f"{time.perf_counter() - started:.0f} s; D loss real/fake {late['train_discriminator_loss_real']:.2f}/"
            f"{late['train_discriminator_loss_fake']:.2f}, trusted {late['train_semi_fraction']:.2f}, "
            f"pseudo acc. trusted/untrusted {final.get('pseudo_accuracy_trusted', math.nan):.2f}/"
            f"{final.get('pseudo_accuracy_untrusted', math.nan):.2f}, AUROC D/softmax "
            f"{final.get('pseudo_auroc_discriminator', math.nan):.2f}/{final.get('pseudo_auroc_softmax', math.nan):.2f}",
            flush=True,
        )


def _choose_fraction(args: argparse.Namespace, dataset: str, candidates: list[float], seeds: list[int]) -> float:
    """Step 1's rule: the largest candidate that all labels beat by ``min_gap`` points on average; once chosen,
    kept in plan.json (so a restart, or a later change of the defaults, does not move the arms)."""
    from pixelwise.files import atomic_path

    plan_path = args.out / "plan.json"
    plan = json.loads(plan_path.read_text()) if plan_path.is_file() else {}
    if dataset in plan:
        return float(plan[dataset]["fraction"])
    scores = {
        (r["fraction"], r["seed"]): 100 * r["test"]["miou"]
        for r in _finished(args.out / "results")
        if r["dataset"] == dataset and r["arm"] == "supervised"
    }
    gaps = {
        fraction: statistics.fmean(scores[(1.0, seed)] - scores[(fraction, seed)] for seed in seeds)
        for fraction in candidates
    }
    wide = [fraction for fraction, gap in gaps.items() if gap >= args.min_gap]
    chosen = max(wide) if wide else min(candidates)
    plan[dataset] = {
        "fraction": chosen,
        "gaps": {fraction_label(fraction): round(gap, 2) for fraction, gap in gaps.items()},
        "labels_are_the_bottleneck": bool(wide),
    }
    with atomic_path(plan_path) as tmp:
        tmp.write_text(json.dumps(plan, indent=1))
    print(f"step 1, {dataset}: gaps all − fraction {plan[dataset]['gaps']}; arms at {fraction_label(chosen)}")
    return chosen


# --- the table ---------------------------------------------------------------------------------------------


def _interval(values: list[float]) -> str:
    """mean ± sample std, and the 95% t-interval of the mean."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:+.1f} (n=1)"
    spread = statistics.stdev(values)
    half = stats.t.ppf(0.975, len(values) - 1) * spread / math.sqrt(len(values))
    return f"{mean:+.1f} ± {spread:.1f}, 95% CI [{mean - half:+.1f}, {mean + half:+.1f}] (n={len(values)})"


def table(results: list[dict[str, Any]], arms: list[str]) -> str:
    """Markdown: test mIoU ×100 per (dataset, labels) and arm; paired differences; the game's diagnostics."""
    lines = ["Test mIoU ×100, mean ± sample std over seeds (final weights, whole test split):", ""]
    lines += ["| dataset | labels | " + " | ".join(arms) + " |", "| --- | --- |" + " ---: |" * len(arms)]
    groups: dict[tuple[str, float], dict[str, dict[int, dict[str, Any]]]] = {}
    for record in results:
        by_arm = groups.setdefault((record["dataset"], record["fraction"]), {})
        by_arm.setdefault(record["arm"], {})[record["seed"]] = record
    for (dataset, fraction), by_arm in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1])):
        cells = []
        for arm in arms:
            values = [100 * r["test"]["miou"] for r in by_arm.get(arm, {}).values()]
            if not values:
                cells.append("—")
            else:
                spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
                cells.append(f"{statistics.fmean(values):.1f}{spread} (n={len(values)})")
        lines.append(f"| {dataset} | {fraction_label(fraction)} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences against supervised (same seed, same labeled images), mIoU points:", ""]
    for (dataset, fraction), by_arm in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1])):
        supervised = by_arm.get("supervised", {})
        for arm in arms:
            if arm == "supervised" or arm not in by_arm:
                continue
            seeds = sorted(seed for seed in by_arm[arm] if seed in supervised)
            deltas = [100 * (by_arm[arm][s]["test"]["miou"] - supervised[s]["test"]["miou"]) for s in seeds]
            if deltas:
                listed = ", ".join(f"{delta:+.1f}" for delta in deltas)
                lines.append(
                    f"- {dataset} {fraction_label(fraction)}: {arm} − supervised = {_interval(deltas)}; "
                    f"per seed {listed}"
                )
        all_labels = groups.get((dataset, 1.0), {}).get("supervised", {})
        seeds = sorted(seed for seed in supervised if seed in all_labels and fraction < 1)
        if seeds:
            gaps = [100 * (all_labels[s]["test"]["miou"] - supervised[s]["test"]["miou"]) for s in seeds]
            lines.append(f"- {dataset} {fraction_label(fraction)}: all labels − this fraction = {_interval(gaps)}")
    lines += ["", "The game and the pseudo-labels (means over seeds):", ""]
    columns = [
        ("D loss real", "late_training", "train_discriminator_loss_real"),
        ("D loss fake", "late_training", "train_discriminator_loss_fake"),
        ("D acc. real", "late_training", "train_discriminator_accuracy_real"),
        ("D acc. fake", "late_training", "train_discriminator_accuracy_fake"),
        ("trusted (train)", "late_training", "train_semi_fraction"),
        ("FixMatch trusted", "late_training", "train_fixmatch_fraction"),
        ("pseudo acc. trusted", "final_epoch", "pseudo_accuracy_trusted"),
        ("pseudo acc. untrusted", "final_epoch", "pseudo_accuracy_untrusted"),
        ("AUROC D", "final_epoch", "pseudo_auroc_discriminator"),
        ("AUROC softmax", "final_epoch", "pseudo_auroc_softmax"),
    ]
    lines += ["| dataset | labels | arm | " + " | ".join(name for name, _, _ in columns) + " |"]
    lines += ["| --- | --- | --- |" + " ---: |" * len(columns)]
    for (dataset, fraction), by_arm in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1])):
        for arm in arms:
            if arm not in by_arm or fraction >= 1:
                continue
            cells = []
            for _, part, key in columns:
                value = _mean([r.get(part, {}).get(key) for r in by_arm[arm].values()])
                cells.append("—" if math.isnan(value) else f"{value:.2f}")
            lines.append(f"| {dataset} | {fraction_label(fraction)} | {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    arms = [name for name in args.arms.split(",") if name]
    datasets = [name for name in args.datasets.split(",") if name]
    unknown = sorted(set(arms) - set(ARMS)) + sorted(set(datasets) - set(DATASETS))
    if unknown:
        print(f"unknown arm or dataset {unknown}", file=sys.stderr)
        return 2
    from pixelwise.files import atomic_path

    if not args.table_only:
        import torch

        torch.set_num_threads(args.threads)
        seeds = [int(seed) for seed in args.seeds.split(",")]
        scan_seeds = [int(seed) for seed in args.scan_seeds.split(",")]
        candidates = sorted((float(value) for value in args.candidates.split(",")), reverse=True)
        for dataset in datasets:
            fraction = args.fraction
            if fraction is None:
                scan = [Run(dataset, f, "supervised", s) for s in scan_seeds for f in [1.0, *candidates]]
                _execute(args, scan, f"step 1, {dataset}")
                fraction = _choose_fraction(args, dataset, candidates, scan_seeds)
            # seed-major: a cut-off experiment still has whole comparisons for its first seeds
            main_runs = [Run(dataset, fraction, arm, seed) for seed in seeds for arm in arms]
            main_runs += [Run(dataset, 1.0, "supervised", seed) for seed in seeds]
            _execute(args, main_runs, f"step 2, {dataset}")
    text = table(_finished(args.out / "results"), [arm for arm in ARMS if arm in arms])
    print(text)
    with atomic_path(args.out / "table.md") as tmp:
        tmp.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
