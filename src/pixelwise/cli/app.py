"""The Typer application every subcommand module registers on, and how every help page looks.

Help is click's plain formatting (``rich_markup_mode=None``): option names stay whole at any width, where
rich's table cut them at 80 columns. Every command is a ``Command``, which lists options in sections (a
parameter's ``rich_help_panel`` names its section) and takes ``-h`` as well as ``--help``. The options that
several commands share are defined once, in ``cli/options.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from pixelwise.settings import parse_key_values as parse_key_values  # the commands' --set and -option flags

HELP_NAMES = ["-h", "--help"]
_NO_BREAK_HYPHEN = "\u2011"  # the same width as "-", where text wrapping may not break
Section = tuple[str, list[tuple[str, str]]]


class Command(TyperCommand):
    """A subcommand: plain help in sections.

    A command with more to list than its options (the classical methods and their ``--set`` keys) adds
    sections through ``help_sections``.
    """

    help_sections: Callable[[], list[Section]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "rich_markup_mode": None})

    # typer carries its own copy of click, whose Context and HelpFormatter it does not export
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] CHECKPOINT INPUT...``: arguments by their metavar, optional ones in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument" and not getattr(param, "hidden", False):
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                if not getattr(param, "hidden", False):
                    sections.setdefault("Arguments", []).append(
                        (_argument_name(param), getattr(param, "help", "") or "")
                    )
                continue
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(record)
        extra = type(self).help_sections
        for title, records in [*sections.items(), *(extra() if extra else [])]:
            with formatter.section(title):
                # names such as unet-small and efficientnet-lite0 are not split at their hyphen
                formatter.write_dl([(term, text.replace("-", _NO_BREAK_HYPHEN)) for term, text in records])
        formatter.buffer[:] = [piece.replace(_NO_BREAK_HYPHEN, "-") for piece in formatter.buffer]


def _argument_name(param: Any) -> str:
    """An argument as the help shows it: its metavar (or name in capitals), ``...`` when it takes several."""
    name = str(param.metavar or param.name.upper())
    return name if param.nargs == 1 or name.endswith("...") else f"{name}..."


def command_class(sections: Callable[[], list[Section]]) -> type[Command]:
    """A ``Command`` whose help ends with ``sections()``: [(title, [(term, text)])], computed when shown."""
    return type("SectionedCommand", (Command,), {"help_sections": staticmethod(sections)})


class Group(TyperGroup):
    """The ``pixelwise`` group (and ``pixelwise datasets``): plain help, ``-h``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "rich_markup_mode": None})


class Typer(typer.Typer):
    """``typer.Typer`` whose commands are ``Command`` unless told otherwise: a new command gets the shared
    help format without asking for it."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or Command, **kwargs)


def _new_app(**options: Any) -> Typer:
    return Typer(
        **options,
        cls=Group,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": HELP_NAMES},
    )


app = _new_app()  # its help: the docstring of its callback, _main
datasets_app = _new_app(help="Built-in datasets: list them, export one as a dataset folder.")
app.add_typer(datasets_app, name="datasets")


def version_line() -> str:
    """``pixelwise 0.1.0 (Python 3.11.9; numpy 2.2.1, torch 2.5.1)``, read from package metadata (nothing is
    imported): what a bug report needs."""
    from pixelwise import __version__
    from pixelwise.versions import library_versions

    versions = library_versions()
    libraries = ", ".join(f"{name} {versions[name]}" for name in ("numpy", "torch") if name in versions)
    return f"pixelwise {__version__} (Python {versions['python']}; {libraries})"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Image semantic segmentation: classical baselines, CNNs and adversarial training, compared.

    `pixelwise COMMAND -h` lists a command's options with their defaults, and examples.
    """
