"""Writing safely: atomic files and folders, one writer per output folder, outputs kept apart from inputs.

- ``atomic_path`` / ``atomic_dir``: a crash or an error never leaves a half-written file where a good one
  was; what they create gets the permissions a plain ``open()`` / ``mkdir()`` would give under the umask.
  An OS error while writing names the file the user asked for, not the temporary one.
- ``output_lock``: a second pixelwise process writing into the same folder refuses, naming the first.
- ``check_apart``: an output never replaces an input file or goes into a folder inputs are read from.
- ``folder_entries`` / ``staged_entries``: what a folder holds besides pixelwise's own bookkeeping, and a
  staging folder whose entries replace the folder's own only when the whole job succeeded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from pixelwise.errors import PixelwiseError

LOCK_FILE = ".pixelwise.lock"
# what a job (pixelwise.jobs) has finished in its output folder, so that a rerun does only the rest
JOB_MANIFEST = ".pixelwise-job.jsonl"
# the infix of every temporary name made here: a leftover of a killed process is recognisably ours
_TEMPORARY = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the mode ``open(path, "w")`` would give: that of the file it replaces, or 0o666 less the
    umask for a new one. An ``OSError`` in the block (a full disk, a read-only folder) names ``path``.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # same folder, so the final rename stays on one file system and is atomic; keep the suffix so that
        # writers that choose a format by extension (Pillow, matplotlib, torch) still see the right one
        tmp = _create(target, lambda name: os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))  # a replaced file keeps its mode, as with open()
        yield tmp
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and _names_nothing_known(error, target):
            raise OSError(error.errno, error.strerror, str(target)) from error
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it becomes ``path`` only if the block succeeds.

    An existing ``path`` is replaced only at the very end, so an interrupted export leaves the old one. The
    folder gets the mode ``mkdir`` would give (0o777 less the umask).
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create(target, lambda name: os.mkdir(name, 0o777))
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old{_TEMPORARY}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and _names_nothing_known(error, target):
            raise OSError(error.errno, error.strerror, str(target)) from error
        raise


def _create(target: Path, make: Callable[[Path], None]) -> Path:
    """A new entry ``.<name>.<random>.tmp<suffix>`` beside ``target``, made by ``make(name)`` (which must fail
    if the name exists, like ``O_EXCL`` and ``mkdir``); unlike ``tempfile`` it leaves the mode to the umask."""
    for _ in range(100):
        candidate = target.with_name(f".{target.stem}.{secrets.token_hex(4)}{_TEMPORARY}{target.suffix}")
        try:
            make(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(target))


def _names_nothing_known(error: OSError, target: Path) -> bool:
    """An OS error that names no file, or a temporary beside ``target``: it should name ``target``, the
    path the user knows."""
    if error.errno is None:  # not the system's error (Pillow raises OSError for its own reasons)
        return False
    named = Path(error.filename) if error.filename is not None else None
    return named is None or (named.parent == target.parent and is_bookkeeping(named.name))


# --- one writer per folder --------------------------------------------------------------------------------


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``folder/.pixelwise.lock`` (an exclusive ``flock``) for the block; create ``folder`` if needed.

    A second pixelwise process that asks for the same folder meanwhile gets a PixelwiseError naming the
    first one's PID. The lock goes with the process: a killed run leaves a file that locks nothing, and the
    next run simply takes it. A folder created here and left empty is removed again.
    """
    directory = Path(folder)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; the other safeguards still hold
        yield directory
        return
    path = directory / LOCK_FILE
    try:
        handle = _take_lock(path, fcntl)
    except OSError as error:  # a read-only folder: name the folder the user gave, not the lock file
        raise OSError(error.errno, error.strerror, str(directory)) from error
    try:
        os.write(handle, f"{os.getpid()}\n".encode())
        yield directory
    finally:
        path.unlink(missing_ok=True)
        os.close(handle)
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only succeeds when nothing was written


def _take_lock(path: Path, fcntl: Any) -> int:
    for _ in range(10):
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(errors="replace").strip() if path.exists() else ""
            os.close(handle)
            who = f"another pixelwise process (PID {holder})" if holder.isdigit() else "another pixelwise process"
            raise PixelwiseError(
                f"{path.parent}: {who} is writing into this folder; wait until it ends or choose another folder"
            ) from None
        # the holder before us may have removed the file between our open and our lock: lock the file that is there
        try:
            if os.fstat(handle).st_ino == os.stat(path).st_ino:
                os.ftruncate(handle, 0)
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)
    raise PixelwiseError(f"{path.parent}: could not take the folder's lock; another process keeps changing it")


# --- inputs and outputs -----------------------------------------------------------------------------------


def check_apart(
    folder: str | os.PathLike[str],
    *,
    input_folders: Iterable[str | os.PathLike[str]] = (),
    input_files: Iterable[str | os.PathLike[str]] = (),
    targets: Iterable[str | os.PathLike[str]] = (),
    flag: str = "the output",
) -> None:
    """Refuse, whatever ``--overwrite`` says, to write into ``folder`` when it is one of the folders the inputs
    are read from (the outputs would replace the inputs, or be read as inputs by the next run), or to write
    ``targets`` that are input files: inputs are never written."""
    into = Path(folder).resolve()
    for given in input_folders:
        if Path(given).is_dir() and into == Path(given).resolve():
            raise PixelwiseError(
                f"{folder}: {flag} would write into {given}, a folder the inputs are read from; inputs are never "
                "written: choose another folder"
            )
    inputs = {Path(file).resolve(): Path(file) for file in input_files}
    for target in map(Path, targets):
        if target.resolve() in inputs:
            raise PixelwiseError(
                f"{inputs[target.resolve()]}: an input would be replaced by an output; inputs are never written: "
                f"choose another folder for {flag}"
            )


def folder_entries(folder: str | os.PathLike[str]) -> list[Path]:
    """What ``folder`` holds besides pixelwise's bookkeeping (its lock, temporaries of a killed run), sorted;
    [] for a folder that does not exist."""
    directory = Path(folder)
    if not directory.is_dir():
        return []
    return sorted(entry for entry in directory.iterdir() if not is_bookkeeping(entry.name))


def is_bookkeeping(name: str) -> bool:
    """The lock file, a job's record or a temporary entry made by this module."""
    return name in (LOCK_FILE, JOB_MANIFEST) or (name.startswith(".") and _TEMPORARY in name)


@contextlib.contextmanager
def staged_entries(folder: str | os.PathLike[str], owned: Collection[str]) -> Iterator[Path]:
    """Yield an empty hidden staging folder inside ``folder``. When the block succeeds, ``folder``'s entries
    named in ``owned`` (and leftovers of killed runs) are removed and the staged entries take their place;
    when it fails, the staging folder goes and ``folder`` is as it was.

    For a job (a report) that must either replace all its earlier files or none: no new file beside an old
    one from another run. The caller holds ``output_lock(folder)``.
    """
    directory = Path(folder)
    stage = _create(directory / "pixelwise-staging", lambda name: os.mkdir(name, 0o777))
    try:
        yield stage
        stray = [entry.name for entry in stage.iterdir() if entry.name not in owned]
        if stray:
            raise AssertionError(f"staged entries {stray} are not among {sorted(owned)}")
        for entry in directory.iterdir():
            if entry != stage and (entry.name in owned or (is_bookkeeping(entry.name) and entry.name != LOCK_FILE)):
                _remove(entry)
        for entry in stage.iterdir():
            os.replace(entry, directory / entry.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
