"""The run folder: its file names, the check before a run writes into it, ``metrics.jsonl`` and ``curves.png``.

================  ====================================================================
file              written
================  ====================================================================
config.yaml       once, when a new run starts (``TrainConfig.save_yaml``)
last.pt           every epoch: what resuming needs (``state.resume_checkpoint``)
best.pt           when the validation mIoU improved: what predicting needs
metrics.jsonl     every epoch, whole: one JSON record per epoch, matching ``last.pt``
curves.png        every epoch: losses, validation scores, the discriminator's and pseudo-labels' numbers
plan.json         with a time budget (``time``): the plan, when made and when an epoch changes it
================  ====================================================================

Every file is written atomically; only the main process writes (``distributed.is_main_process``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelwise.errors import PixelwiseError
from pixelwise.files import atomic_path, folder_entries
from pixelwise.metrics import json_ready

if TYPE_CHECKING:
    from pixelwise.checkpoint import Checkpoint

CONFIG_FILE = "config.yaml"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
PLAN_FILE = "plan.json"


def prepare_out_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Make sure ``out`` may take the run: a ``last.pt`` to resume from, or an empty (or new) folder unless
    ``overwrite`` (then the run's own files are replaced and nothing else is touched)."""
    if resume:
        if not (out / LAST_FILE).is_file():
            raise PixelwiseError(f"{out}: no {LAST_FILE} to resume from; start a new run without --resume")
        return
    if out.is_file():
        raise PixelwiseError(f"{out}: is a file; give a folder for the run")
    if folder_entries(out) and not overwrite:
        raise PixelwiseError(
            f"{out}: not empty; pass --resume to continue the run in it, --overwrite to train into it anyway "
            "(files of the same names are replaced), or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)


def load_last(out: Path) -> Checkpoint:
    """``out/last.pt`` to resume from. A damaged one is refused with what the user still has: whether
    ``best.pt`` is intact (it is read to know), and how to go on without losing it."""
    from pixelwise.checkpoint import load_checkpoint

    try:
        return load_checkpoint(out / LAST_FILE)
    except PixelwiseError as error:
        message = str(error)
        if message.endswith("upgrade"):  # a newer pixelwise wrote it: nothing is damaged
            raise
        what = message.rsplit("; ", 1)[0]  # what is wrong with last.pt, without the advice for another file
    best = out / BEST_FILE
    try:
        load_checkpoint(best)
    except PixelwiseError:
        raise PixelwiseError(
            f"{what}; {best} cannot be read either, so nothing of this run can be used: train again with "
            "--overwrite or into another --out"
        ) from None
    raise PixelwiseError(
        f"{what}; {best} is intact: predict with it as it is, and keep it by training again into another --out "
        f"(or copy it out of {out} before --overwrite, which replaces it); --resume needs {LAST_FILE}"
    ) from None


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl``: one JSON object per epoch, rewritten whole so it always matches ``last.pt``."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(json_ready(record)) + "\n" for record in history))


def write_plan(path: Path, plan: Any) -> None:
    """``plan.json``: a time budget's plan (``budget.Plan``), indented for reading."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_ready(plan.to_dict()), indent=2) + "\n")


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """``curves.png``: losses, validation scores and, in adversarial runs, D's loss and accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [record["epoch"] for record in history]

    def series(key: str) -> list[float]:
        return [float("nan") if record.get(key) is None else float(record[key]) for record in history]

    panels: list[tuple[str, list[tuple[str, str]]]] = [
        ("loss", [("train_loss", "train"), ("train_supervised_loss", "train (supervised)"), ("val_loss", "val")]),
        ("validation", [("val_miou", "mIoU"), ("val_mean_dice", "mean Dice"), ("val_pixel_accuracy", "pixel acc.")]),
    ]
    if any("train_discriminator_loss" in record for record in history):
        panels.append(
            (
                "discriminator",
                [
                    ("train_discriminator_loss_real", "D loss, real half"),
                    ("train_discriminator_loss_fake", "D loss, predicted half"),
                    ("train_discriminator_accuracy_real", "D acc. real"),
                    ("train_discriminator_accuracy_fake", "D acc. predicted"),
                    ("train_semi_fraction", "unlabeled px trusted"),
                ],
            )
        )
    if any("pseudo_accuracy_trusted" in record for record in history):
        panels.append(
            (
                "pseudo-labels (hidden labels)",
                [
                    ("pseudo_accuracy_trusted", "acc. trusted"),
                    ("pseudo_accuracy_untrusted", "acc. untrusted"),
                    ("pseudo_trusted_fraction", "trusted"),
                    ("pseudo_auroc_discriminator", "AUROC of D"),
                    ("pseudo_auroc_softmax", "AUROC of max softmax"),
                    ("train_fixmatch_fraction", "FixMatch trusted (train)"),
                ],
            )
        )
    panels = [(title, [(k, n) for k, n in lines if any(k in r for r in history)]) for title, lines in panels]
    panels = [(title, lines) for title, lines in panels if lines]
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 3.4), squeeze=False)
    for axis, (title, lines) in zip(axes[0], panels, strict=False):
        for key, label in lines:
            axis.plot(epochs, series(key), marker="o", markersize=3, label=label)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar validation metrics as ``val_<name>``, plus the per-class IoU."""
    settings = {"boundary_tolerance", "ignore_index", "num_pixels"}
    flat: dict[str, Any] = {
        f"val_{key}": value for key, value in metrics.items() if isinstance(value, (int, float)) and key not in settings
    }
    per_class = metrics.get("per_class", {})
    flat["val_iou"] = {name: scores["iou"] for name, scores in per_class.items()}
    return flat


def summary_line(record: dict[str, Any], epochs: int, improved: bool) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record.get('train_loss', float('nan')):.4f}"]
    if "val_miou" in record:
        parts.append(f"val mIoU {record['val_miou']:.4f}")
    if "train_discriminator_loss" in record:
        parts.append(
            f"D loss real/predicted {record['train_discriminator_loss_real']:.3f}/"
            f"{record['train_discriminator_loss_fake']:.3f} "
            f"(acc. {record['train_discriminator_accuracy_real']:.2f}/"
            f"{record['train_discriminator_accuracy_fake']:.2f})"
        )
    for key, name in (("train_semi_fraction", "trusted"), ("train_fixmatch_fraction", "FixMatch trusted")):
        if key in record:
            parts.append(f"{name} {record[key]:.2f}")
    if "pseudo_accuracy_trusted" in record:
        parts.append(
            f"pseudo-label acc. trusted/untrusted {record['pseudo_accuracy_trusted']:.2f}/"
            f"{record['pseudo_accuracy_untrusted']:.2f}"
        )
        aurocs = [
            f"{record[key]:.2f}" for key in ("pseudo_auroc_discriminator", "pseudo_auroc_softmax") if key in record
        ]
        parts.append(f"AUROC {'D/softmax' if len(aurocs) == 2 else 'softmax'} {'/'.join(aurocs)}")
    parts.append(f"{record['seconds']:.1f} s")
    return ", ".join(parts) + (" *" if improved else "")
