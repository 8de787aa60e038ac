"""The one exception type a user sees: what was wrong, with which file, and how to fix it."""

from __future__ import annotations


class PixelwiseError(Exception):
    """Bad input from the user (a file, a value, a flag).

    The message is one line that names the file and says what to do. The command line prints it on stderr
    and exits with status 2, without a traceback; library users catch it like any other exception.
    """
