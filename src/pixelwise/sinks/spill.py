"""A spill file: the finished rows of one output, kept on disk as they come, so that a killed run resumes at
the last finished block of rows instead of the first row.

``OUT/.<file>.resume.tmp`` beside the output it belongs to (hidden, and bookkeeping to ``files.is_bookkeeping``:
listings and ``evaluate`` skip it). It starts with one header line (the format, a key that names the job's
settings and the output's size) and holds blocks of ``rows`` rows, each zlib-compressed behind a small
header (index, rows, length, CRC-32), appended and flushed one by one. A block torn by a kill (a short
write, a wrong CRC) and everything after it is cut off when the file is opened again; a header of other
settings (another model, another tile size) starts the file over. The output itself is written from the
spill at the end, atomically, and the spill removed: the output is complete or absent, never half.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

FORMAT = "pixelwise-spill/1"
_BLOCK = struct.Struct("<IIQI")  # index, rows, compressed length, CRC-32 of the compressed bytes
SUFFIX = ".resume.tmp"


def spill_path(output: Path) -> Path:
    """Where the spill of ``output`` lives: hidden, beside it."""
    return output.with_name(f".{output.name}{SUFFIX}")


class RowSpill:
    """Blocks of ``rows`` rows of a (height, width[, channels]) array of ``dtype``, appended in order."""

    def __init__(
        self, path: Path, *, key: str, shape: tuple[int, ...], dtype: str, rows: int, resume: bool = True
    ) -> None:
        self.path = path
        self.shape = tuple(int(size) for size in shape)
        self.dtype = np.dtype(dtype)
        self.rows = rows
        self._header = self._header_for(key)
        self.blocks = self._recover() if resume else 0
        if self.blocks == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                handle.write(self._header)
        self._handle = path.open("ab")

    @property
    def rows_done(self) -> int:
        """Rows held, from the top (the image's height once every block is in)."""
        return min(self.shape[0], self.blocks * self.rows)

    def append(self, values: np.ndarray) -> None:
        """The next block (``rows`` rows, fewer for the last)."""
        data = zlib.compress(np.ascontiguousarray(values, self.dtype).tobytes(), 1)
        self._handle.write(_BLOCK.pack(self.blocks, values.shape[0], len(data), zlib.crc32(data)) + data)
        self._handle.flush()  # in the OS's hands: a killed process loses nothing written so far
        self.blocks += 1

    def read_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of every block, top to bottom."""
        self._handle.flush()
        with self.path.open("rb") as handle:
            handle.seek(len(self._header))
            for _ in range(self.blocks):
                index, rows, length, _ = _BLOCK.unpack(handle.read(_BLOCK.size))
                values = np.frombuffer(zlib.decompress(handle.read(length)), self.dtype)
                yield index * self.rows, values.reshape((rows, *self.shape[1:]))

    def close(self) -> None:
        self._handle.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    @classmethod
    def rows_held(cls, path: Path, *, key: str, shape: tuple[int, ...], dtype: str, rows: int) -> int:
        """The rows a spill of these settings at ``path`` holds, read without changing the file (0: none)."""
        spill = cls.__new__(cls)
        spill.path, spill.shape, spill.dtype, spill.rows = (
            path,
            tuple(int(size) for size in shape),
            np.dtype(dtype),
            rows,
        )
        spill._header = spill._header_for(key)
        try:
            with path.open("rb") as handle:
                blocks, _ = spill._scan(handle)
        except OSError:
            return 0
        return min(spill.shape[0], blocks * rows)

    def _header_for(self, key: str) -> bytes:
        header = {"format": FORMAT, "key": key, "shape": self.shape, "dtype": self.dtype.str, "rows": self.rows}
        return (json.dumps(header) + "\n").encode()

    def _recover(self) -> int:
        """The number of whole blocks a spill of these settings holds (cutting off a torn tail); 0 for none."""
        try:
            handle = self.path.open("r+b")
        except OSError:
            return 0
        with handle:
            blocks, end = self._scan(handle)
            if blocks:
                handle.truncate(end)
                os.fsync(handle.fileno())
        return blocks

    def _scan(self, handle: BinaryIO) -> tuple[int, int]:
        """(whole blocks, the offset after the last) of an open spill; (0, 0) for another header."""
        if handle.read(len(self._header)) != self._header:
            return 0, 0
        blocks, end = 0, handle.tell()
        while True:
            head = handle.read(_BLOCK.size)
            if len(head) < _BLOCK.size:
                break
            index, rows, length, crc = _BLOCK.unpack(head)
            data = handle.read(length)
            expected_rows = min(self.rows, self.shape[0] - blocks * self.rows)
            if index != blocks or rows != expected_rows or len(data) != length or zlib.crc32(data) != crc:
                break
            blocks, end = blocks + 1, handle.tell()
        return blocks, end


class BlockCollector:
    """Bands of rows in (any heights, top to bottom), whole blocks of ``rows`` rows out, from row ``start`` on
    (rows above it, already written by an earlier run, are passed over)."""

    def __init__(self, *, height: int, rows: int, start: int, tail: tuple[int, ...], dtype: str) -> None:
        self.height, self.rows, self.next = height, rows, start
        self.buffer = np.zeros((min(rows, height), *tail), dtype)
        self.filled = 0

    def add(self, top: int, values: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of every block ``values`` (rows [top, top + len)) completes."""
        begin = self.next + self.filled
        if top > begin:
            raise ValueError(f"rows {begin}..{top} never came: bands must follow each other")
        values = values[begin - top :]
        while len(values):
            block_rows = min(self.rows, self.height - self.next)
            taken = min(block_rows - self.filled, len(values))
            self.buffer[self.filled : self.filled + taken] = values[:taken]
            self.filled += taken
            values = values[taken:]
            if self.filled == block_rows:
                yield self.next, self.buffer[:block_rows]
                self.next += block_rows
                self.filled = 0

    @property
    def complete(self) -> bool:
        return self.next >= self.height
