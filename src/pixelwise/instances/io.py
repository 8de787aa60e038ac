"""Objects on disk: 32-bit label images, and ``objects.csv`` built so that a crash loses no finished image.

- ``write_label_image(path, labels)``: an int32 TIFF (deflate), 0 = no object; ImageJ/Fiji, QuPath, napari
  and scikit-image read it as labels. ``read_label_image`` reads TIFF and integer PNG label images.
- ``instance_file(mask_path)``: the label image of a mask, ``instances/<stem>.*`` beside ``masks/`` (or beside
  the predicted masks).
- ``ObjectsWriter(folder)``: each image's rows go into a part file of their own, written whole or not at all
  (``objects.parts/<name>.objects.csv`` and ``<name>.counts.csv``); ``finish()`` joins every part, by name,
  into ``objects.csv`` and ``objects_summary.csv`` (atomically) and removes the parts. A run that dies keeps
  the parts of every image it finished: ``done()`` names them (a resumed run skips those) and ``finish()``
  of the next run joins them with its own.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.instances.measure import OBJECT_COLUMNS, SUMMARY_COLUMNS, ClassCount, ObjectTable

OBJECTS_FILE = "objects.csv"
SUMMARY_FILE = "objects_summary.csv"
PARTS_FOLDER = "objects.parts"
INSTANCES_FOLDER = "instances"
# an image's two part files; names such as "a.counts" cannot pass for another image's parts
_ROWS_SUFFIX, _COUNTS_SUFFIX = ".objects.csv", ".counts.csv"
LABEL_SUFFIXES = (".tif", ".tiff", ".png")


def write_label_image(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """(H, W) integer labels as a 32-bit signed TIFF, deflate-compressed, written atomically."""
    import tifffile

    from pixelwise.files import atomic_path

    if labels.ndim != 2:
        raise ValueError(f"a label image is (H, W); got shape {labels.shape}")
    if labels.size and int(labels.max()) > np.iinfo(np.int32).max:
        raise PixelwiseError(f"{path}: more objects than a 32-bit label image holds")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.int32), compression="zlib", photometric="minisblack")


def read_label_image(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W) int32 labels from a TIFF or PNG of integers (8, 16 or 32 bit), 0 = no object."""
    file = Path(path)
    try:
        if file.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            labels = tifffile.imread(file)
        else:
            from PIL import Image

            with Image.open(file) as picture:
                if picture.mode not in ("L", "P", "I", "I;16", "I;16B", "1"):
                    raise PixelwiseError(
                        f"{file}: a {picture.mode} image is no label image; give one integer per pixel"
                    )
                labels = np.asarray(picture)
    except PixelwiseError:
        raise
    except (OSError, ValueError) as error:
        raise PixelwiseError(
            f"{file}: cannot read it as a label image ({error}); give a TIFF or PNG of integers"
        ) from None
    if labels.size == 0:
        raise PixelwiseError(
            f"{file}: cannot read it as a label image (no pixels in it); give a TIFF or PNG of integers"
        )
    labels = np.squeeze(labels)
    if labels.ndim != 2 or (not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool):
        raise PixelwiseError(
            f"{file}: a label image is one integer per pixel; this is {labels.dtype} of shape {labels.shape}"
        )
    if labels.size and int(labels.min()) < 0:
        raise PixelwiseError(f"{file}: negative labels; label objects 1..N and leave 0 for no object")
    if labels.size and int(labels.max()) > np.iinfo(np.int32).max:
        raise PixelwiseError(f"{file}: labels beyond 32 bits; number the objects 1..N")
    return labels.astype(np.int32)


def instance_file(mask_path: str | os.PathLike[str]) -> Path | None:
    """The label image of a mask, or None: ``FOLDER/instances/<stem>.tif`` (or .tiff, .png) for
    ``FOLDER/masks/<stem>.*`` (a dataset), ``FOLDER/instances/<stem>.tif`` for ``FOLDER/<stem>.png`` (a
    folder of predicted masks, where ``--instances`` writes them)."""
    mask = Path(mask_path)
    parent = mask.parent.parent if mask.parent.name == "masks" else mask.parent
    folder = parent / INSTANCES_FOLDER
    for suffix in LABEL_SUFFIXES:
        candidate = folder / f"{mask.stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


class ObjectsWriter:
    """``objects.csv`` and ``objects_summary.csv`` of a run over many images, one part file per image.

    >>> import tempfile
    >>> from pixelwise.instances.labels import Instances
    >>> from pixelwise.instances.measure import count_objects, measure_objects
    >>> folder = Path(tempfile.mkdtemp())
    >>> objects = Instances(np.array([[0, 1], [1, 0]], np.int32), np.array([1], np.int32))
    >>> writer = ObjectsWriter(folder)
    >>> writer.add(measure_objects(objects, name="a"), count_objects(objects, name="a"))
    >>> writer.finish()  # objects, images
    (1, 1)
    >>> (folder / "objects.csv").read_text().splitlines()[1].split(",")[:4]
    ['a', '1', '1', '2']
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.parts = self.folder / PARTS_FOLDER

    def done(self) -> set[str]:
        """The images whose part files are written (a resumed run skips them; ``finish`` joins them)."""
        if not self.parts.is_dir():
            return set()
        counted = self.parts.rglob(f"*{_COUNTS_SUFFIX}")
        return {path.relative_to(self.parts).as_posix()[: -len(_COUNTS_SUFFIX)] for path in counted}

    def add(self, table: ObjectTable, counts: Sequence[ClassCount]) -> None:
        """The rows of one image, written whole into its part files (the counts last: they mark the image
        done). The image's name (``table.image``) may hold sub-folders, ``batch2/a``, as a job names images."""
        from pixelwise.files import atomic_path

        name = table.image
        if not name or name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"an image needs a relative name for its part files, got {name!r}")
        for suffix, header, rows in (
            (_ROWS_SUFFIX, table.header, table.rows()),
            (_COUNTS_SUFFIX, SUMMARY_COLUMNS, (count.row() for count in counts)),
        ):
            part = self.parts / f"{name}{suffix}"
            part.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(part) as tmp:
                tmp.write_text(_csv_text(header, rows))

    def finish(self) -> tuple[int, int]:
        """Join the parts (by image name) into the two files and remove them; (objects, images) written.

        Images measured with different bands give different intensity columns: the header is their union
        in order of first appearance, and a value an image lacks is empty."""
        from pixelwise.files import atomic_path

        names = sorted(self.done())
        header: list[str] = []
        tables: list[list[dict[str, str]]] = []
        for name in names:
            with open(self.parts / f"{name}{_ROWS_SUFFIX}", newline="") as part:
                reader = csv.DictReader(part)
                header += [column for column in reader.fieldnames or () if column not in header]
                tables.append(list(reader))
        objects = [row for rows in tables for row in rows]
        with atomic_path(self.folder / OBJECTS_FILE) as tmp:
            tmp.write_text(
                _csv_text(header or OBJECT_COLUMNS, ([row.get(key, "") for key in header] for row in objects))
            )
        summary_rows: list[list[str]] = []
        for name in names:
            with open(self.parts / f"{name}{_COUNTS_SUFFIX}", newline="") as part:
                summary_rows += list(csv.reader(part))[1:]
        with atomic_path(self.folder / SUMMARY_FILE) as tmp:
            tmp.write_text(_csv_text(SUMMARY_COLUMNS, summary_rows))
        shutil.rmtree(self.parts, ignore_errors=True)
        return len(objects), len(names)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue()


def _cell(value: object) -> object:
    # 8 significant digits: a centroid keeps its fraction of a pixel in a gigapixel image, the file stays readable
    return f"{value:.8g}" if isinstance(value, float) else value
