"""`pixelwise train DATA --out RUN_DIR`: train a segmenter (supervised, adversarial or semi-supervised).

Settings come from the defaults of ``TrainConfig``, then ``--config FILE``, then ``--set KEY=VALUE``, then
the flags; with ``--resume`` the run's own ``config.yaml`` takes the place of the defaults. There is one
flag per ``TrainConfig`` field, generated from the field (its name, type, default and documentation), so
a new setting reaches the command line by being added to the config. Flags are read as text and checked
by ``TrainConfig``, so a bad value is one line that names it.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from pixelwise.cli.app import app, parse_key_values
from pixelwise.errors import PixelwiseError
from pixelwise.train.config import TrainConfig

SETTINGS_SECTION = "Settings (TrainConfig; also --config FILE, --set KEY=VALUE)"


class _TqdmHandler(logging.Handler):
    """Log lines printed above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


class _SectionedHelp(TyperCommand):
    """Click's plain help, in sections: option names stay whole at any width (rich's table cuts them at
    80 columns), and the generated settings are listed apart from the command's own options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "rich_markup_mode": None})

    # typer carries its own copy of click, whose Context and HelpFormatter it does not export
    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                panel = getattr(param, "rich_help_panel", None)
                title = "Arguments" if param.param_type_name == "argument" else panel or "Options"
                sections.setdefault(title, []).append(record)
        for title, records in sections.items():
            with formatter.section(title):
                formatter.write_dl(records)


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
    if config_file is not None:
        import yaml

        from_file = TrainConfig.from_yaml(config_file).to_dict()  # checks the file, errors name it
        # only the settings the file names override the base (which may be a resumed run's config)
        values.update({key: from_file[key] for key in yaml.safe_load(config_file.read_text()) or {}})
    values.update(parse_key_values(settings, "--set"))
    values.update({key: value for key, value in flags.items() if value is not None})
    if model_options:
        values["model_options"] = {
            **(values.get("model_options") or {}),
            **parse_key_values(model_options, "--model-option"),
        }
    return TrainConfig.from_dict(values, source="command line")


@app.command(cls=_SectionedHelp)
@with_setting_flags
def train(
    data: str = typer.Argument(
        ...,
        help="Dataset folder or built-in name: its train/ and val/ folders, or the seeded 70/15/15 split of a flat "
        "images/ + masks/ folder.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, config.yaml, metrics.jsonl, curves."),
    config_file: Path | None = typer.Option(None, "--config", help="YAML file of settings; flags override it."),
    settings: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Any setting, e.g. lr=0.01."),
    model_options: list[str] = typer.Option(
        [],
        "--model-option",
        metavar="KEY=VALUE",
        help="Option of the model, e.g. width=32 for unet-small; a wrong name lists them.",
    ),
    data_options: list[str] = typer.Option(
        [], "--data-option", metavar="KEY=VALUE", help="Option of a built-in dataset, e.g. count=50 or size=32."
    ),
    unlabeled: Path | None = typer.Option(None, help="Folder of unlabeled images (besides DATA/unlabeled/)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Train into a non-empty --out (files of the run's names are replaced)."
    ),
    force: bool = typer.Option(False, "--force", hidden=True, help="Deprecated name of --overwrite."),
    threads: int | None = typer.Option(None, "--threads", metavar="N", help="torch threads (default: torch's choice)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-epoch lines."),
    **flags: Any,
) -> None:
    """Train a segmentation network on DATA and write the run (best.pt, last.pt, ...) to --out."""
    from pixelwise.data.builtin import dataset_root
    from pixelwise.data.folder import SegmentationFolder
    from pixelwise.data.io import list_images
    from pixelwise.data.splits import available_splits
    from pixelwise.train.loop import fit

    if force:
        typer.echo("note: --force is now --overwrite", err=True)
        overwrite = True
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
    if threads is not None:
        if threads < 1:
            raise PixelwiseError(f"--threads {threads}: give 1 or more")
        import torch

        torch.set_num_threads(threads)

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
        config, train_data, val_data, out_dir=out, unlabeled=extra, resume=resume, force=overwrite, progress=not quiet
    )
    if result.history:
        best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
        score = f"val mIoU {best['val_miou']:.4f}" if "val_miou" in best else f"train loss {best['train_loss']:.4f}"
        typer.echo(f"best epoch {result.best_epoch} ({score}): {result.best_checkpoint}")
