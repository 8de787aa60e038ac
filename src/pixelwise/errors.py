"""The one exception type a user sees: what was wrong, with which file, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PixelwiseError(Exception):
    """Bad input from the user (a file, a value, a flag).

    The message is one line that names the file and says what to do. The command line prints it on stderr
    and exits with status 2, without a traceback; library users catch it like any other exception.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'epochs'?)"`` when ``name`` is a near miss of one of ``choices``, else ``""``.

    The one suggestion for every name that is looked up (methods, models, encoders, datasets, settings,
    options, commands), put right after the name in the message. Case, ``-`` and ``_`` do not count
    against a match, so ``multi-otsu`` finds ``multi_otsu``.

    >>> did_you_mean("epoch", ["epochs", "lr"]), did_you_mean("colour", ["epochs", "lr"])
    (" (did you mean 'epochs'?)", '')
    >>> did_you_mean("Multi-Otsu", ["otsu", "multi_otsu"])
    " (did you mean 'multi_otsu'?)"
    """

    def plain(text: str) -> str:
        return text.lower().replace("-", "_")

    by_plain = {plain(choice): choice for choice in choices}
    close = difflib.get_close_matches(plain(name), list(by_plain), n=1, cutoff=0.75)
    return f" (did you mean {by_plain[close[0]]!r}?)" if close else ""
