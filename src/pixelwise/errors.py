"""The one exception type a user sees: what was wrong, with which file, and how to fix it."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class PixelwiseError(Exception):
    """Bad input from the user (a file, a value, a flag).

    The message is one line that names the file and says what to do. The command line prints it on stderr
    and exits with status 2, without a traceback; library users catch it like any other exception.
    """


class InputError(PixelwiseError):
    """One input file that cannot be used: damaged, too large for the memory, of a kind the command cannot
    take. A batch (``pixelwise.jobs``) says it and goes on with the other files; any other PixelwiseError
    (a bad setting, a bad model) stops the batch, as it would fail every file alike."""


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


# what to do about the OS errors a user meets, by errno
_FIXES = {
    errno.EACCES: "choose a folder you may write to, or change its permissions",
    errno.EPERM: "choose a folder you may write to, or change its permissions",
    errno.EROFS: "choose a folder on a writable disk",
    errno.ENOSPC: "free some space or choose a folder on another disk",
    errno.EDQUOT: "free some space (your disk quota is used up) or choose a folder on another disk",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose another path",
    errno.EEXIST: "a part of this path is a file, not a folder; choose another path",
    errno.ENOENT: "check the path",
    errno.EISDIR: "this is a folder; give a file name",
    errno.ENAMETOOLONG: "choose a shorter name",
}


def describe_os_error(error: OSError) -> str:
    """One line for an OS error: the path, the system's reason and what to do.

    >>> describe_os_error(PermissionError(errno.EACCES, "Permission denied", "out/a.png"))
    'out/a.png: Permission denied; choose a folder you may write to, or change its permissions'
    """
    path = error.filename if error.filename is not None else error.filename2
    reason = error.strerror or str(error) or error.__class__.__name__
    fix = _FIXES.get(error.errno or -1)
    return (f"{path}: " if path is not None else "") + reason + (f"; {fix}" if fix else "")
