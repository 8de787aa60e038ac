"""The ``pixelwise`` command. Each subcommand is a thin layer over the library call of the same name.

Subcommands live one module each (``cli/classical.py`` ...) and import heavy libraries (torch) inside the
command, so that ``pixelwise --help`` stays fast.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from pixelwise.cli import classical, compare, datasets, evaluate, export, models, predict, serve, train  # noqa: F401  (registration)
from pixelwise.cli.app import app
from pixelwise.errors import PixelwiseError, describe_os_error


def main() -> None:
    """Entry point: user errors and OS errors (a read-only folder, a full disk) become one line on stderr and
    exit status 2, never a traceback; warnings become one ``note:`` line each. Ctrl-C exits with 130."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note
            app(standalone_mode=True)
    except PixelwiseError as error:
        print(f"pixelwise: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        print(f"pixelwise: error: {describe_os_error(error)}", file=sys.stderr)
        sys.exit(2)


def _note(
    message: Warning | str, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A warning as one line, without the source line Python's own display adds; above a progress bar."""
    from tqdm import tqdm

    text = " ".join(str(message).split())
    tqdm.write(f"note: {text}", file=sys.stderr)
