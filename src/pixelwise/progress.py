"""Progress of long work on stderr: a tqdm bar on a terminal, plain lines every few seconds anywhere else.

tqdm draws nothing useful into a pipe or a log file (its carriage returns pile up on one line, and with
``disable=None`` it stays silent), so a 30-second prediction piped into a file looked hung. Off a
terminal, ``LineProgress`` writes one line every ``PIPE_INTERVAL`` seconds instead, and a last one when
the work took long enough to have printed any.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
PIPE_INTERVAL = 5.0  # seconds between progress lines off a terminal


def progress_bar(
    *, total: int, desc: str, unit: str, quiet: bool = False, leave: bool = True, stream: TextIO | None = None
) -> Any:
    """A context manager with ``update(n)``, ``set_postfix_str(text)`` and ``write(line)``: tqdm when
    ``stream`` (stderr) is a terminal (``leave=False``: its bar is cleared at the end), else
    ``LineProgress``; silent (but still usable) with ``quiet``. The commands' and the library's long loops
    (predict, classical, evaluate, train's epochs, compare's methods) all report through it."""
    stream = stream or sys.stderr
    if quiet or stream.isatty():
        from tqdm import tqdm

        # delay: a command that fails on its first item (a bad value) stays one line
        return tqdm(
            total=total, desc=desc, unit=unit, disable=quiet, leave=leave, file=stream, delay=0.5, dynamic_ncols=True
        )
    return LineProgress(total=total, desc=desc, unit=unit, stream=stream)


def tracked(items: Iterable[T], *, total: int, desc: str, unit: str, quiet: bool = False) -> Iterator[T]:
    """``items`` one by one, with ``progress_bar`` counting them."""
    with progress_bar(total=total, desc=desc, unit=unit, quiet=quiet) as bar:
        for item in items:
            yield item
            bar.update(1)


class LineProgress:
    """``predict: 120/480 tiles (25%), 12 s, 10 tiles/s, about 36 s left (big.tif)``, one line per ``interval``
    seconds."""

    def __init__(
        self,
        *,
        total: int,
        desc: str,
        unit: str,
        stream: TextIO,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.interval = PIPE_INTERVAL if interval is None else interval
        self.clock = clock
        self.count = 0
        self.postfix = ""
        self.started = clock()
        self.last_line = self.started
        self.lines = 0
        self.shown = 0  # the count the last line showed

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = self.clock()
        if now - self.last_line >= self.interval:
            self._line(now)

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def write(self, line: str, file: TextIO | None = None) -> None:
        print(line, file=file or self.stream, flush=True)

    def close(self) -> None:
        """The last line, when earlier ones were printed (short work prints nothing at all)."""
        if self.lines and self.count != self.shown:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        elapsed = now - self.started
        text = f"{self.desc}: {self.count}/{self.total} {self.unit}s"
        if self.total:
            text += f" ({100 * self.count / self.total:.0f}%)"
        text += f", {elapsed:.0f} s"
        if 0 < self.count < self.total and elapsed > 0:
            text += f", {self.count / elapsed:.3g} {self.unit}s/s"  # hours of slide: the rate tells more than a bar
        if 0 < self.count < self.total:
            text += f", about {elapsed * (self.total - self.count) / self.count:.0f} s left"
        if self.postfix:
            text += f" ({self.postfix})"
        print(text, file=self.stream, flush=True)
        self.last_line = now
        self.lines += 1
        self.shown = self.count
