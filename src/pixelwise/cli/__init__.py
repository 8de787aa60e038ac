"""The ``pixelwise`` command. Each subcommand is a thin layer over the library call of the same name.

Subcommands live one module each (``cli/classical.py`` ...) and import heavy libraries (torch) inside the
command, so that ``pixelwise --help`` stays fast.
"""

from __future__ import annotations

import sys

from pixelwise.cli import classical, compare, datasets, evaluate, export, predict, train  # noqa: F401  (registration)
from pixelwise.cli.app import app
from pixelwise.errors import PixelwiseError


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2, never a traceback."""
    try:
        app(standalone_mode=True)
    except PixelwiseError as error:
        print(f"pixelwise: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("pixelwise: interrupted", file=sys.stderr)
        sys.exit(130)
