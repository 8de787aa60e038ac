"""How much memory reading an image may take: the guard that replaces Pillow's pixel-count limit.

Pillow refuses any image of more than about 179 million pixels as a possible "decompression bomb", which
also refuses an ordinary 14000 x 14000 slide scan. pixelwise reads what the user asks for, and refuses only
what cannot fit: an image whose decoding needs more than ``MEMORY_SHARE`` of the memory available now
(``MemAvailable`` of ``/proc/meminfo``, within a cgroup's limit where one is set), with a message that says
how much it needs. Where the available memory cannot be learnt, nothing is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelwise.errors import InputError

# the share of the available memory one image may take while it is read
MEMORY_SHARE = 0.8


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or None where the system does not say."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None and hasattr(os, "sysconf"):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            available = None
    try:  # a container's limit (cgroup v2) may be far below the machine's memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            room = max(int(limit) - used, 0)
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def check_fits(file: str | os.PathLike[str], description: str, needed: int) -> None:
    """Refuse reading ``file`` (``description``: e.g. "a 20000 x 30000 RGB image") when it would need more than
    ``MEMORY_SHARE`` of the available memory; say how much it needs."""
    available = available_memory()
    if available is not None and needed > MEMORY_SHARE * available:
        raise InputError(
            f"{file}: {description} needs about {format_bytes(needed)} of memory to read, and "
            f"{format_bytes(available)} are available; free memory, or crop or tile the image into smaller files"
        )


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
