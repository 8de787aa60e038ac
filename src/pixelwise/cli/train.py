"""`pixelwise train DATA --out RUN_DIR`: train a segmenter (supervised, adversarial or semi-supervised).

Settings come from the defaults of ``TrainConfig``, then ``--config FILE``, then the flags (and ``--set
KEY=VALUE`` for any other setting); with ``--resume`` the run's own ``config.yaml`` takes the place of the
defaults. Flags are read as text and checked by ``TrainConfig``, so a bad value is one line that names it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer

from pixelwise.cli.app import app, parse_key_values
from pixelwise.errors import PixelwiseError


class _TqdmHandler(logging.Handler):
    """Log lines printed above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def resolve_config(
    *, out: Path, config_file: Path | None, flags: dict[str, Any], settings: list[str], resume: bool
) -> Any:
    """TrainConfig from (the run's config.yaml when resuming, else the defaults) < --config < --set < flags."""
    from pixelwise.train.config import TrainConfig
    from pixelwise.train.loop import CONFIG_FILE

    base = TrainConfig()
    if resume:
        saved = out / CONFIG_FILE
        if not saved.is_file():
            raise PixelwiseError(f"{out}: no {CONFIG_FILE} to resume from; start a new run without --resume")
        base = TrainConfig.from_yaml(saved)
    values = base.to_dict()
    if config_file is not None:
        import yaml

        from_file = TrainConfig.from_yaml(config_file).to_dict()  # checks the file, errors name it
        # only the settings the file names override the base (which may be a resumed run's config)
        values.update({key: from_file[key] for key in yaml.safe_load(config_file.read_text()) or {}})
    values.update(parse_key_values(settings, "--set"))
    values.update({key: value for key, value in flags.items() if value is not None})
    return TrainConfig.from_dict(values, source="command line")


@app.command()
def train(
    data: str = typer.Argument(
        ...,
        help="Dataset folder or built-in name: its train/ and val/ folders, or the seeded 70/15/15 split of a flat "
        "images/ + masks/ folder.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, config.yaml, metrics.jsonl, curves."),
    config_file: Path | None = typer.Option(None, "--config", help="YAML file of settings; flags override it."),
    model: str | None = typer.Option(None, help="Model name (see the models list); default unet-small."),
    encoder: str | None = typer.Option(None, help="Encoder of encoder-based models, e.g. efficientnet-lite0."),
    encoder_weights: str | None = typer.Option(None, help="'imagenet' (efficientnet-lite0, offline) or a .pth path."),
    epochs: str | None = typer.Option(None, metavar="N"),
    iterations_per_epoch: str | None = typer.Option(
        None, metavar="N", help="Batches per epoch; default one pass over the labeled images."
    ),
    lr: str | None = typer.Option(None, metavar="F", help="Learning rate of the segmenter."),
    batch_size: str | None = typer.Option(None, metavar="N"),
    crop_size: str | None = typer.Option(None, metavar="N", help="Side of the training crops (validation: whole)."),
    loss: str | None = typer.Option(None, metavar="ce|dice|focal|ce+dice"),
    optimizer: str | None = typer.Option(None, metavar="adamw|sgd"),
    schedule: str | None = typer.Option(None, metavar="poly|cosine|constant"),
    warmup_iterations: str | None = typer.Option(None, metavar="N"),
    grad_clip: str | None = typer.Option(None, metavar="F", help="Max gradient norm; 0: off."),
    patience: str | None = typer.Option(
        None, metavar="N", help="Epochs without improvement before stopping; 0: never."
    ),
    seed: str | None = typer.Option(None, metavar="N", help="Makes runs repeatable (weights, order, augmentation)."),
    num_workers: str | None = typer.Option(None, metavar="N", help="Data loading processes (0: in the main one)."),
    device: str | None = typer.Option(None, metavar="auto|cpu|cuda"),
    amp: bool | None = typer.Option(None, "--amp/--no-amp", help="bfloat16 autocast on the CPU (float16 on CUDA)."),
    adversarial_weight: str | None = typer.Option(None, metavar="F", help="λ_adv (e.g. 0.01); 0: no adversarial term."),
    semi_weight: str | None = typer.Option(None, metavar="F", help="λ_semi (e.g. 0.1); 0: no semi-supervised term."),
    semi_threshold: str | None = typer.Option(None, metavar="F", help="Trust unlabeled pixels where σ(D) > F."),
    semi_start: str | None = typer.Option(None, metavar="N", help="Iterations before the semi-supervised term starts."),
    labeled_fraction: str | None = typer.Option(
        None, metavar="F", help="Keep the labels of this fraction of the training set; the rest become unlabeled."
    ),
    discriminator_image: bool | None = typer.Option(
        None, "--discriminator-image/--no-discriminator-image", help="Show the discriminator the image too."
    ),
    unlabeled: Path | None = typer.Option(None, help="Folder of unlabeled images (besides DATA/unlabeled/)."),
    settings: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Any other setting of TrainConfig."),
    data_options: list[str] = typer.Option(
        [], "--data-option", metavar="KEY=VALUE", help="Option of a built-in dataset, e.g. count=50 or size=32."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    force: bool = typer.Option(False, "--force", help="Train into a non-empty --out (same-named files replaced)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-epoch lines."),
) -> None:
    """Train a segmentation network on DATA and write the run (best.pt, last.pt, ...) to --out."""
    from pixelwise.data.builtin import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.io import list_images
    from pixelwise.data.splits import available_splits
    from pixelwise.train.loop import fit

    flags = {
        "model": model,
        "encoder": encoder,
        "encoder_weights": encoder_weights,
        "epochs": epochs,
        "iterations_per_epoch": iterations_per_epoch,
        "lr": lr,
        "batch_size": batch_size,
        "crop_size": crop_size,
        "loss": loss,
        "optimizer": optimizer,
        "schedule": schedule,
        "warmup_iterations": warmup_iterations,
        "grad_clip": grad_clip,
        "patience": patience,
        "seed": seed,
        "num_workers": num_workers,
        "device": device,
        "amp": amp,
        "adversarial_weight": adversarial_weight,
        "semi_weight": semi_weight,
        "semi_threshold": semi_threshold,
        "semi_start": semi_start,
        "labeled_fraction": labeled_fraction,
        "discriminator_image": discriminator_image,
    }
    if resume and force:
        raise PixelwiseError("--resume and --force contradict each other; give one of them")
    config = resolve_config(out=out, config_file=config_file, flags=flags, settings=settings, resume=resume)

    root = dataset_root(data, **parse_key_values(data_options, "--data-option"))
    train_data = SegmentationFolder(root, "train")
    train_data.check()
    # a flat folder always yields a val split; a train/ val/ test/ folder may lack val/, which is allowed
    val_data: SegmentationFolder | None = None
    if "val" in available_splits(root):
        val_data = SegmentationFolder(root, "val", classes=train_data.classes, in_channels=train_data.in_channels)
        val_data.check()
    if val_data is None or len(val_data) == 0:
        typer.echo(f"note: {root} has no validation images; best.pt follows the training loss", err=True)
        val_data = None
    extra = list_images(unlabeled) if unlabeled is not None else None

    logger = logging.getLogger("pixelwise.train")
    if not quiet and not logger.handlers:
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    result = fit(
        config, train_data, val_data, out_dir=out, unlabeled=extra, resume=resume, force=force, progress=not quiet
    )
    if result.history:
        best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
        score = f"val mIoU {best['val_miou']:.4f}" if "val_miou" in best else f"train loss {best['train_loss']:.4f}"
        typer.echo(f"best epoch {result.best_epoch} ({score}): {result.best_checkpoint}")
