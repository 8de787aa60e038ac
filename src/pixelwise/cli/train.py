"""`pixelwise train DATA --out RUN_DIR`: train a segmenter (supervised, adversarial or semi-supervised).

Settings come from the defaults of ``TrainConfig``, then ``--config FILE``, then ``--set KEY=VALUE``, then
the flags; with ``--resume`` the run's own ``config.yaml`` takes the place of the defaults. There is one
flag per ``TrainConfig`` field, generated from the field (its name, type, default and documentation), so
a new setting reaches the command line by being added to the config. Flags are read as text and checked
by ``TrainConfig``, so a bad value is one line that names it.

``--bands`` (1-based numbers or the file's band names), ``--nodata`` and ``--scaling`` say how images are
read (``data.bands``); the checkpoint records it and ``predict`` applies it again; ``--resume`` takes it from
the run's ``last.pt``.

One ``train`` at a time writes into a run folder (``files.output_lock``). Ctrl-C says where the last
checkpoint is and the command that resumes from it (exit status 130); resuming a finished run says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import shlex
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pixelwise.cli.app import app, parse_key_values
from pixelwise.cli.options import (
    data_options_option,
    model_options_option,
    out_option,
    overwrite_option,
    quiet_option,
    set_threads,
    settings_option,
    threads_option,
)
from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig

if TYPE_CHECKING:
    from pixelwise.data.bands import InputBands
    from pixelwise.train.plan import TrainingPlan

SETTINGS_SECTION = "Settings (TrainConfig; also --config FILE, --set KEY=VALUE)"


class _TqdmHandler(logging.Handler):
    """Log lines printed above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def with_setting_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which takes ``**flags``) one option per ``TrainConfig`` field, from the field itself.

    ``--epochs N``, ``--lr F``, ``--loss ce|dice|focal|ce+dice``, ``--scale-range F,F``, on/off settings as
    ``--amp/--no-amp``; the help is the field's documentation with its default. Values arrive in ``flags``
    as given (text; None when absent), for ``TrainConfig`` to convert and check. A mapping field (the model
    options) has a KEY=VALUE option of the command's own instead.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [parameter for parameter in signature.parameters.values() if parameter.kind is not parameter.VAR_KEYWORD]
    hints = typing.get_type_hints(TrainConfig)
    generated = []
    for field in dataclasses.fields(TrainConfig):
        kind = hints[field.name]
        if typing.get_origin(kind) is dict:
            continue
        if field.name in signature.parameters:
            raise AssertionError(f"TrainConfig.{field.name} clashes with a parameter of {command.__name__}")
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{field.metadata['doc']}  [default: {_shown_default(field.default)}]"
        if kind is bool:
            option = typer.Option(
                None, f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False, rich_help_panel=SETTINGS_SECTION
            )
            annotation: Any = bool | None
        else:
            metavar = field.metadata.get("metavar") or _metavar(kind, field.metadata["choices"])
            option = typer.Option(
                None, flag, metavar=metavar, help=help_text, show_default=False, rich_help_panel=SETTINGS_SECTION
            )
            annotation = str | None
        generated.append(
            inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
        )
    parameters = [*own, *generated]
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return command


def _metavar(kind: Any, choices: tuple[str, ...]) -> str:
    if choices:
        return "|".join(choices)
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if typing.get_origin(kind) is tuple:
        return "F,F,..." if Ellipsis in args else ",".join("F" for _ in args)
    if args:  # an optional value: the type inside
        return _metavar(args[0], choices)
    return {int: "N", float: "F"}.get(kind, "TEXT")


def _shown_default(value: Any) -> str:
    """A default as one would type it: none, on/off, 0.75,1.25."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def given_settings(
    config_file: Path | None,
    settings: list[str],
    model_options: list[str],
    flags: dict[str, Any],
    *,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The training settings given on the command line: --config < --set < the flags, only the keys given
    (so that a report can list them; from --config the settings the file names, the file checked first so
    that its errors name it). --model-option adds to the model options below it: --config's or --set's, else
    ``base``'s."""
    given: dict[str, Any] = {}
    if config_file is not None:
        import yaml

        checked = TrainConfig.from_yaml(config_file).to_dict()
        given.update({key: checked[key] for key in yaml.safe_load(config_file.read_text()) or {}})
    given.update(parse_key_values(settings, "--set"))
    given.update({key: value for key, value in flags.items() if value is not None})
    if model_options:
        below = given.get("model_options", (base or {}).get("model_options")) or {}
        given["model_options"] = {**below, **parse_key_values(model_options, "--model-option")}
    return given


def resolve_config(
    *,
    out: Path,
    config_file: Path | None,
    flags: dict[str, Any],
    settings: list[str],
    model_options: list[str],
    resume: bool,
) -> TrainConfig:
    """TrainConfig from (the run's config.yaml when resuming, else the defaults) < --config < --set < flags."""
    from pixelwise.train.run_files import CONFIG_FILE

    base = TrainConfig()
    if resume:
        saved = out / CONFIG_FILE
        if not saved.is_file():
            raise PixelwiseError(f"{out}: no {CONFIG_FILE} to resume from; start a new run without --resume")
        base = TrainConfig.from_yaml(saved)
    values = base.to_dict()
    values.update(given_settings(config_file, settings, model_options, flags, base=values))
    return TrainConfig.from_dict(values, source="command line")


@app.command(
    epilog="""Examples:

\b
  pixelwise train nuclei -o runs/nuclei --epochs 30
  pixelwise train nuclei -o runs/quick --time 10m --logger tensorboard
  pixelwise train data/cells -o runs/adv --adversarial-weight 0.01
  pixelwise train data/cells -o runs/wide --model-option width=32
  pixelwise train data/cells -o runs/adv --resume
  pixelwise train data/s2 -o runs/s2 --bands 4,3,2,8 --nodata 0"""
)
@with_setting_flags
def train(
    data: str = typer.Argument(
        ...,
        metavar="DATA",
        help="Dataset folder or built-in name: its train/ and val/ folders (without val/, --val-fraction of train/), "
        "or the seeded 70/15/15 split of a flat images/ + masks/ folder.",
    ),
    out: Path = out_option("Run folder: checkpoints, config.yaml, metrics.jsonl, curves."),
    config_file: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="YAML file of settings; --set and the flags override it."
    ),
    settings: list[str] = settings_option("Any setting below by its name, e.g. lr=0.01."),
    model_options: list[str] = model_options_option(),
    data_options: list[str] = data_options_option(),
    unlabeled: Path | None = typer.Option(
        None, metavar="DIR", help="Folder of unlabeled images (besides DATA/unlabeled/)."
    ),
    bands: str | None = typer.Option(
        None,
        "--bands",
        metavar="4,3,2",
        help="The bands to train on, 1-based (as GDAL) or by the files' band names, in this order.  "
        "[default: every band]",
    ),
    nodata: float | None = typer.Option(
        None,
        "--nodata",
        metavar="V",
        help="The stored value of pixels without data (their labels are ignored).  [default: each file's own]",
    ),
    scaling: str = typer.Option(
        "auto",
        "--scaling",
        metavar="auto|image|dataset",
        help="How non-8-bit values become [0, 1]: each image by its own range, or each band by the training set's. "
        "auto: dataset for multispectral, georeferenced or --bands images, image for grey and RGB.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    logger_names: list[str] = typer.Option(
        [],
        "--logger",
        metavar="tensorboard|mlflow",
        help="Also log the run there (repeat for both; needs pixelwise[track]); --resume continues the run's own.",
    ),
    overwrite: bool = overwrite_option("Train into a non-empty --out (files of the run's names are replaced)."),
    threads: int | None = threads_option(),
    quiet: bool = quiet_option("No progress bar and no per-epoch lines."),
    **flags: Any,
) -> None:
    """Train a segmentation network on DATA.

    Supervised, adversarial or semi-supervised (by the weights below); the run (best.pt, last.pt,
    config.yaml, metrics.jsonl, curves.png) goes to --out.
    """
    from pixelwise.data.bands import parse_bands
    from pixelwise.data.datasets import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.io import list_images
    from pixelwise.data.splits import available_splits
    from pixelwise.train.distributed import is_main_process
    from pixelwise.train.loop import fit

    if resume and overwrite:
        raise PixelwiseError("--resume and --overwrite contradict each other; give one of them")
    config = resolve_config(
        out=out,
        config_file=config_file,
        flags=flags,
        settings=settings,
        model_options=model_options,
        resume=resume,
    )
    if config.time is not None:
        from pixelwise.train.budget import parse_duration

        parse_duration(config.time)  # a bad value is one line before anything is read or written
    if logger_names:
        from pixelwise.train.loggers import check_loggers

        check_loggers(logger_names)
    set_threads(threads, torch=True)

    root = dataset_root(data, **parse_key_values(data_options, "--data-option"))
    reading: dict[str, Any] = {
        "bands": parse_bands(bands) if bands is not None else (),
        "nodata": nodata,
        "scaling": scaling.lower(),
        # a resumed run reads its images as it began to (bands, no data, band ranges), unless told otherwise
        "input_bands": _recorded_bands(out) if resume and bands is None and nodata is None else None,
    }
    train_data = SegmentationFolder(root, "train", **reading)
    train_data.check()
    # a flat folder always yields a val split; a train/ val/ test/ folder may lack val/, which is allowed
    val_data: SegmentationFolder | None = None
    if "val" in available_splits(root):
        val_data = SegmentationFolder(
            root, "val", classes=train_data.classes, in_channels=train_data.in_channels, **reading
        )
        val_data.check()
    # without val/, fit holds out config.val_fraction of the training images and says so
    # under torchrun every process runs this command; the main one (rank 0) speaks for them
    main = is_main_process()
    extra = list_images(unlabeled) if unlabeled is not None else None

    logger = _training_logger(quiet=quiet, main=main)
    # settings the user did not give come from the data (a new run only: a resumed one has its config.yaml)
    plan = None
    if not resume:
        given = given_settings(config_file, settings, model_options, flags)
        plan = _plan(config, train_data, given, carved=val_data is None)
        config = plan.apply(config)
        if not quiet:
            logger.info("%s", "\n".join(plan.lines()))
    from pixelwise.files import output_lock

    # only the main process writes, so only it locks
    lock = output_lock(out) if main else contextlib.nullcontext()
    with lock:
        done = _epochs_done(out) if resume else 0
        if plan is not None and main:
            from pixelwise.train.run_files import prepare_out_dir

            prepare_out_dir(out, resume=False, overwrite=overwrite)  # the folder is this run's: the plan may go in
        try:
            result = fit(
                config,
                train_data,
                val_data,
                out_dir=out,
                unlabeled=extra,
                resume=resume,
                force=overwrite,
                progress=not quiet,
                loggers=logger_names,
            )
        except KeyboardInterrupt:
            if main:
                _say_how_to_resume(out, data=data, data_options=data_options, unlabeled=unlabeled, epochs=config.epochs)
            raise
        finally:
            from pixelwise.train.run_files import CONFIG_FILE

            # beside the run's config.yaml once the run began (also after Ctrl-C); a run refused before it
            # began leaves no plan behind to make the folder look used
            if plan is not None and main and (out / CONFIG_FILE).is_file():
                from pixelwise.train.plan import PLAN_FILE

                plan.save(out / PLAN_FILE)
    if main:
        _say_outcome(result, out=out, config=config, finished_before=done if resume else None)


def _plan(config: TrainConfig, train_data: Any, given: dict[str, Any], *, carved: bool) -> TrainingPlan:
    """The plan from the training data (``train.plan``) for the settings not in ``given``; ``carved``: fit will
    hold out the validation images from ``train_data``."""
    from pixelwise.train.plan import fingerprint, plan_training

    return plan_training(fingerprint(train_data), config, given=set(given), carved=carved)


def _training_logger(*, quiet: bool, main: bool) -> logging.Logger:
    """The training log, printed above the progress bar unless ``quiet``; only the main process speaks."""
    logger = logging.getLogger("pixelwise.train")
    if not quiet and not logger.handlers:
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if main else logging.WARNING)
        logger.propagate = False
    return logger


def _say_outcome(result: Any, *, out: Path, config: TrainConfig, finished_before: int | None) -> None:
    """The run's last lines: a resumed run that had nothing left to do says why; then the best epoch."""
    if finished_before is not None and len(result.history) == finished_before:
        why = (
            f"it stopped early after epoch {finished_before} (no improvement for {config.patience} epochs); "
            "raise --patience"
            if result.stopped_early
            else f"its time ({config.time}) is spent; raise --time"
            if config.time
            else f"all {config.epochs} epochs are done; raise --epochs"
        )
        typer.echo(f"{out}: the run is complete: {why} to train longer")
    if result.history:
        best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
        score = f"val mIoU {best['val_miou']:.4f}" if "val_miou" in best else f"train loss {best['train_loss']:.4f}"
        typer.echo(f"best epoch {result.best_epoch} ({score}): {result.best_checkpoint}")


def _recorded_bands(out: Path) -> InputBands | None:
    """How the run in ``out`` read its images (its ``last.pt``), for ``--resume``; None when it recorded
    nothing or has no checkpoint yet (``fit`` then says what is wrong with the folder)."""
    from pixelwise.checkpoint import load_checkpoint
    from pixelwise.train.run_files import LAST_FILE

    if not (out / LAST_FILE).is_file():
        return None
    try:
        return load_checkpoint(out / LAST_FILE).input_bands
    except PixelwiseError:
        return None  # a damaged last.pt: fit's resume says what of the run is intact


def _epochs_done(out: Path) -> int:
    """The epochs a run folder records (``metrics.jsonl`` has one line per epoch, written after ``last.pt``)."""
    from pixelwise.train.run_files import METRICS_FILE

    metrics = out / METRICS_FILE
    return len(metrics.read_text().splitlines()) if metrics.is_file() else 0


def _say_how_to_resume(out: Path, *, data: str, data_options: list[str], unlabeled: Path | None, epochs: int) -> None:
    """After Ctrl-C: where the run stands and the exact command that continues it (or starts it again).

    The run's settings are in its config.yaml; only what says which data it trains on is repeated."""
    from pixelwise.train.run_files import LAST_FILE

    if (out / LAST_FILE).is_file():
        options = [part for option in data_options for part in ("--data-option", option)]
        options += ["--unlabeled", str(unlabeled)] if unlabeled is not None else []
        command = shlex.join(["pixelwise", "train", data, *options, "--out", str(out), "--resume"])
        where = f"the last checkpoint is {out / LAST_FILE} (epoch {_epochs_done(out)} of {epochs})"
        print(f"pixelwise: interrupted; {where}; resume with: {command}", file=sys.stderr)
    else:
        command = shlex.join(["pixelwise", *sys.argv[1:], "--overwrite"])
        print(
            f"pixelwise: interrupted before the first epoch ended, so no checkpoint was written; start again "
            f"with: {command}",
            file=sys.stderr,
        )
