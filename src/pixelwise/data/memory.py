"""How much memory reading an image may take: the guard that replaces Pillow's pixel-count limit.

Pillow refuses any image of more than about 179 million pixels as a possible "decompression bomb", which
also refuses an ordinary 14000 x 14000 slide scan. pixelwise reads what the user asks for, and refuses only
what cannot fit: an image whose decoding needs more than ``MEMORY_SHARE`` of the room this process has now,
with a message that says how much it needs and which limit stands in the way. The room is the smallest of

- the memory available (``MemAvailable`` of ``/proc/meminfo``),
- a container's limit (cgroup v2 ``memory.max``) less what the container uses,
- the address-space limit (``ulimit -v``, ``prlimit --as``, ``RLIMIT_AS``) less this process's address
  space (``VmSize``): under such a limit an allocation fails long before the machine runs out of memory,
- the data-segment limit (``ulimit -d``, ``RLIMIT_DATA``) less this process's data (``VmData``).

Where none of them can be learnt, nothing is refused. A ``MemoryError`` that happens anyway (the estimate
is an estimate; other processes take memory meanwhile) becomes one line too: :func:`memory_error_line`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pixelwise.errors import InputError

# the share of the room one image may take while it is read
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class Room:
    """Bytes this process may still allocate, and what sets that bound (said in messages)."""

    bytes: int
    limit: str  # how a message says it, "{}" for the bytes: "the address-space limit (ulimit -v) leaves {}"
    fix: str

    def said(self) -> str:
        return self.limit.format(format_bytes(self.bytes))


_AVAILABLE = ("{} are available", "free memory")
_CONTAINER = ("the container's memory limit leaves {}", "raise the container's memory limit")
_ADDRESS_SPACE = ("the address-space limit (ulimit -v) leaves {}", "raise the limit (ulimit -v)")
_DATA_SEGMENT = ("the data-size limit (ulimit -d) leaves {}", "raise the limit (ulimit -d)")


def memory_room() -> Room | None:
    """The tightest of the bounds of the module docstring, or None where the system says none."""
    rooms: list[Room] = []
    available = _meminfo_available()
    if available is not None:
        rooms.append(Room(available, *_AVAILABLE))
    container = _cgroup_room()
    if container is not None:
        rooms.append(Room(container, *_CONTAINER))
    rooms.extend(_rlimit_rooms())
    return min(rooms, key=lambda room: room.bytes) if rooms else None


def available_memory() -> int | None:
    """Bytes this process may still allocate (:func:`memory_room`), or None where the system does not say."""
    room = memory_room()
    return room.bytes if room is not None else None


def check_fits(file: str | os.PathLike[str], description: str, needed: int) -> None:
    """Refuse reading ``file`` (``description``: e.g. "a 20000 x 30000 RGB image") when it would need more than
    ``MEMORY_SHARE`` of the room; say how much it needs and which limit is in the way."""
    room = memory_room()
    if room is not None and needed > MEMORY_SHARE * room.bytes:
        raise not_enough_memory(file, description, needed, room)


def not_enough_memory(
    file: str | os.PathLike[str], description: str, needed: int, room: Room | None = None
) -> InputError:
    """The one line for ``file`` that does not fit: what it needs, the room (measured now if not given)."""
    room = room if room is not None else memory_room()
    if room is None:
        return InputError(
            f"{file}: {description} needs about {format_bytes(needed)} of memory to read, more than this process "
            "could get; free memory, or crop or tile the image into smaller files"
        )
    return InputError(
        f"{file}: {description} needs about {format_bytes(needed)} of memory to read, and {room.said()}; "
        f"{room.fix}, or crop or tile the image into smaller files"
    )


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says an allocation failed: a ``MemoryError``, or PyTorch's ``RuntimeError`` from its CPU
    allocator ("DefaultCPUAllocator: can't allocate memory"), which it raises instead of a ``MemoryError``."""
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


def memory_error_line(error: BaseException, file: str | os.PathLike[str] | None = None) -> str:
    """One line for a failed allocation (:func:`out_of_memory`): the file (where known), the size of the
    allocation that failed (NumPy and PyTorch say it; other allocators do not) and the room left.

    >>> memory_error_line(MemoryError(), "a.png")  # doctest: +ELLIPSIS
    'a.png: not enough memory to process it (...); ..., use smaller inputs (crop or tile large images) or a larger machine'
    """
    shape, dtype = getattr(error, "shape", None), getattr(error, "dtype", None)
    itemsize = getattr(dtype, "itemsize", None)
    tried = re.search(r"tried to allocate (\d+) bytes", str(error))
    room = memory_room()
    reasons = []
    if isinstance(shape, tuple) and isinstance(itemsize, int):
        size = math.prod(int(side) for side in shape) * itemsize
        reasons.append(f"an array of {format_bytes(size)} ({' x '.join(map(str, shape))} {dtype}) did not fit")
    elif tried:
        reasons.append(f"{format_bytes(int(tried.group(1)))} more were needed at once")
    reasons.append(room.said() if room is not None else "the room left is unknown")
    where = f"{file}: not enough memory to process it" if file is not None else "not enough memory"
    fix = room.fix if room is not None else "free memory"
    return f"{where} ({'; '.join(reasons)}); {fix}, use smaller inputs (crop or tile large images) or a larger machine"


def format_bytes(count: float) -> str:
    """
    >>> format_bytes(3 * 1024**3), format_bytes(1536), format_bytes(12)
    ('3.0 GB', '1.5 KB', '12 B')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


# --- the bounds ----------------------------------------------------------------------------------------


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return None


def _cgroup_room() -> int | None:
    """A container's limit (cgroup v2) less its use: it may be far below the machine's memory."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def _rlimit_rooms() -> list[Room]:
    """The address-space and data-size limits (soft: the one that makes an allocation fail) less what this
    process has of each (``/proc/self/status``; without it, the whole limit: an upper bound)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return []
    rooms = []
    status = _process_status()
    for name, field, (limit_name, fix) in (
        ("RLIMIT_AS", "VmSize", _ADDRESS_SPACE),
        ("RLIMIT_DATA", "VmData", _DATA_SEGMENT),
    ):
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        try:
            soft, _ = resource.getrlimit(kind)
        except (OSError, ValueError):
            continue
        if soft == resource.RLIM_INFINITY or soft < 0:
            continue
        rooms.append(Room(max(int(soft) - status.get(field, 0), 0), limit_name, fix))
    return rooms


def _process_status() -> dict[str, int]:
    """``VmSize`` and ``VmData`` of this process in bytes, where ``/proc`` says them."""
    found: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmSize", "VmData"):
                found[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found
