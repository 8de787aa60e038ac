"""Whether a path is a file to read: said from its metadata alone, before anything opens it (a named pipe
would block a reader, a device such as ``/dev/zero`` would never end). ``data.io`` re-exports both functions.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pixelwise.errors import InputError

PathLike = str | os.PathLike[str]


def not_a_file(path: PathLike) -> str | None:
    """What ``path`` is when it is no regular file (links followed), from its metadata alone; None for a file.

    Never opens it: a named pipe would block the reader, a device such as ``/dev/zero`` would never end.

    >>> not_a_file("/dev/null"), not_a_file("/no/such/file")
    ('a character device', 'no such file')
    """
    file = Path(path)
    try:
        mode = os.stat(file).st_mode
    except FileNotFoundError:
        return f"a link to {os.readlink(file)}, which does not exist" if file.is_symlink() else "no such file"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device"}
    kinds |= {stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
    kind = kinds.get(stat.S_IFMT(mode), "not a regular file")
    return f"a link to {file.resolve()}, {kind}" if file.is_symlink() else kind


def check_regular_file(path: PathLike) -> None:
    """An InputError for a path that is no regular file (:func:`not_a_file`), before anything opens it."""
    what = not_a_file(path)
    if what == "no such file":
        raise InputError(f"{path}: no such file; check the path")
    if what is not None and what.endswith("does not exist"):
        raise InputError(f"{path}: {what}; fix the link or give the image file itself")
    if what is not None:
        # said as what it is, and never opened: a pipe would wait forever, a device never end
        raise InputError(f"{path}: {what}, not an image file; give the image file itself")
