"""The files of an export, whether it is a folder or a zip: listed and read by their relative path.

Members of a zip are read, never extracted, so a member named ``../x`` cannot write anywhere; the zip stays
open until ``close`` (the writer's end of an import).
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from pixelwise.data.importers.base import ImageFile
from pixelwise.errors import PixelwiseError


class Tree:
    """The files of ``path`` (a folder, or a ``.zip``): ``names`` (POSIX paths relative to the top), ``read``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.names = sorted(
                entry.relative_to(path).as_posix()
                for entry in path.rglob("*")
                if entry.is_file() and not entry.name.startswith(".")
            )
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as error:
                raise PixelwiseError(f"{path}: not a zip file ({error}); give the export's zip or its folder") from None
            self.names = sorted(
                info.filename
                for info in self._zip.infolist()
                if not info.is_dir() and not PurePosixPath(info.filename).name.startswith(".")
            )
        else:
            raise PixelwiseError(f"{path}: no such file or folder; give the export's zip or folder")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def where(self, name: str) -> str:
        """How a message names a file of the tree: ``export.zip:SegmentationClass/a.png`` or a path."""
        return f"{self.path}:{name}" if self._zip is not None else str(self.path / name)

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            try:
                return self._zip.read(name)
            except (zipfile.BadZipFile, KeyError, OSError, EOFError) as error:
                raise PixelwiseError(f"{self.where(name)}: cannot read it from the zip ({error})") from None
        return (self.path / name).read_bytes()

    def text(self, name: str) -> str:
        try:
            return self.read(name).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PixelwiseError(f"{self.where(name)}: not a UTF-8 text file; fix the export") from None

    def image(self, name: str) -> ImageFile:
        """An image of the tree as an ``ImageFile`` (a path for a folder, the member's bytes for a zip)."""
        suffix = PurePosixPath(name).suffix
        if self._zip is None:
            return ImageFile(self.where(name), suffix, path=self.path / name)
        return ImageFile(self.where(name), suffix, read=lambda: self.read(name))

    def top(self, *markers: str) -> str | None:
        """The shallowest folder (``""`` or ``"task_1/"``) that holds all ``markers`` (files or folders), or None:
        a zip often puts the export under a folder of its own."""
        folders = {prefix for name in self.names for prefix in _prefixes(name)}
        candidates = sorted(folders, key=lambda prefix: (prefix.count("/"), prefix))
        for prefix in candidates:
            if all(self.has(prefix + marker) for marker in markers):
                return prefix
        return None

    def has(self, name: str) -> bool:
        """A file, or a folder holding files."""
        return name in self.names or any(entry.startswith(name.rstrip("/") + "/") for entry in self.names)

    def under(self, folder: str) -> list[str]:
        """The files of the tree under ``folder`` (any depth), sorted."""
        start = folder.rstrip("/") + "/"
        return [name for name in self.names if name.startswith(start)]


def _prefixes(name: str) -> list[str]:
    """Every folder above ``name`` as a prefix: ``a/b/c.png`` -> ``""``, ``a/``, ``a/b/``."""
    parts = PurePosixPath(name).parts[:-1]
    return ["".join(f"{part}/" for part in parts[:depth]) for depth in range(len(parts) + 1)]
