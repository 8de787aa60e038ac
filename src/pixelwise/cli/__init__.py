"""The ``pixelwise`` command. Each subcommand is a thin layer over the library call of the same name.

Subcommands live one module each (``cli/classical.py`` ...) and import heavy libraries (torch) inside the
command, so that ``pixelwise --help`` stays fast.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from typing import Any

import typer

from pixelwise.cli import classical, compare, datasets, evaluate, export, models, predict, serve, train  # noqa: F401  (registration)
from pixelwise.cli.app import app
from pixelwise.errors import PixelwiseError, describe_os_error


def main() -> None:
    """Entry point: user errors and OS errors (a read-only folder, a full disk) become one line on stderr and
    exit status 2, never a traceback; so do click's usage errors (a missing argument, an unknown flag), with
    the usage in the same line; warnings become one ``note:`` line each. Ctrl-C and SIGTERM exit with 130.
    A ``MemoryError`` (or PyTorch's "can't allocate memory") is one line too, with the size that did not fit
    and the room left: one that reading a file met names that file already (``data`` turns it into an
    ``InputError``), as the jobs of ``predict`` and ``classical`` name their image."""
    click = _typer_s_click_exceptions()
    # a scheduler's SIGTERM (SLURM's preemption, torchrun stopping its workers) stops a run as Ctrl-C does:
    # train says where its checkpoint is and how to resume; every write is atomic either way
    if threading.current_thread() is threading.main_thread():  # only there may a handler be set
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note
            # not standalone: click would print its usage errors as four lines of its own
            status = app(standalone_mode=False, prog_name="pixelwise")
    except click.UsageError as error:
        # a bare `pixelwise` or `pixelwise datasets`: the help, as click prints it (older clicks exit 0 instead)
        no_args_is_help: Any = getattr(click, "NoArgsIsHelpError", ())
        if isinstance(error, no_args_is_help):
            print(error.format_message(), file=sys.stderr)
        else:
            print(f"pixelwise: error: {_usage_error_line(error)}", file=sys.stderr)
        sys.exit(2)
    except click.ClickException as error:
        print(f"pixelwise: error: {_one_line(error.format_message())}", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Abort:
        print("pixelwise: aborted", file=sys.stderr)
        sys.exit(1)
    except PixelwiseError as error:
        print(f"pixelwise: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        print(f"pixelwise: error: {describe_os_error(error)}", file=sys.stderr)
        sys.exit(2)
    except (MemoryError, RuntimeError) as error:
        from pixelwise.data.memory import memory_error_line, out_of_memory

        if not out_of_memory(error):  # PyTorch's allocator raises RuntimeError; any other is a bug to see whole
            raise
        print(f"pixelwise: error: {memory_error_line(error)}", file=sys.stderr)
        sys.exit(2)
    # a command returns None; --help, --version and Ctrl-C (130) end with click's exit status
    sys.exit(status if isinstance(status, int) else 0)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _typer_s_click_exceptions() -> Any:
    """The module of the click exceptions typer raises: its own copy of click in newer typers
    (``typer._click``), the click package in older ones (our lower bound, typer 0.20)."""
    import typer.core

    click = getattr(typer.core, "_click", None) or typer.core.click  # type: ignore[attr-defined]
    return click.exceptions


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_error_line(error: Any) -> str:
    """``Missing argument 'MODEL' (usage: pixelwise predict [OPTIONS] MODEL INPUT...; -h for help)``."""
    message = _one_line(error.format_message()).rstrip(".")
    if error.ctx is None:
        return message
    usage = _one_line(error.ctx.get_usage()).removeprefix("Usage: ")
    return f"{message} (usage: {usage}; {error.ctx.command_path} -h for help)"


def _note(
    message: Warning | str, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A warning as one line, without the source line Python's own display adds; above a progress bar."""
    from tqdm import tqdm

    text = " ".join(str(message).split())
    tqdm.write(f"note: {text}", file=sys.stderr)
