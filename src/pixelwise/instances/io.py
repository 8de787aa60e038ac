"""Objects on disk: 32-bit label images, and ``objects.csv`` built so that a crash loses no finished image.

- ``write_label_image(path, labels)``: an int32 TIFF (deflate), 0 = no object; ImageJ/Fiji, QuPath, napari
  and scikit-image read it as labels. ``read_label_image`` reads TIFF and integer PNG label images.
- ``instance_file(mask_path)``: the label image of a mask, ``instances/<stem>.*`` beside ``masks/`` (or beside
  the predicted masks).
- ``ObjectsWriter(folder)``: each image's rows go into part files of their own, written whole or not at all
  (``.objects-parts/<name>.objects.csv``, ``<name>.counts.csv`` and, with COCO annotations,
  ``<name>.coco.json``); ``finish()`` joins the parts, by name, into ``objects.csv``, ``objects_summary.csv``
  (and ``objects.coco.json``), atomically, and removes the parts. A run that dies keeps the parts of every
  image it finished: ``done()`` names them (a resumed run skips those) and ``finish()`` of the next run
  joins them with its own. A job that runs again over the same folder keeps them (``keep_parts``) and
  joins the images it names (``names``): its tables are always those of its finished images.

The names of the sub-folders of a prediction folder that hold objects and probabilities are here, the
lowest layer that reads them (``pixelwise.sinks`` writes them, ``instances.truth`` reads them).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.instances.measure import OBJECT_COLUMNS, SUMMARY_COLUMNS, ClassCount, ObjectTable

if TYPE_CHECKING:
    from pixelwise.instances.coco import CocoImage

OBJECTS_FILE = "objects.csv"
SUMMARY_FILE = "objects_summary.csv"
COCO_FILE = "objects.coco.json"
# hidden: the parts are bookkeeping, the tables are what a user opens
PARTS_FOLDER = ".objects-parts"
# the sub-folders of a prediction folder: label images (``--instances``), probabilities (``--save-probs``)
INSTANCES_FOLDER = "instances"
PROBABILITY_FOLDER = "probabilities"
# an image's part files; names such as "a.counts" cannot pass for another image's parts
_ROWS_SUFFIX, _COUNTS_SUFFIX, _COCO_SUFFIX = ".objects.csv", ".counts.csv", ".coco.json"
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
    """The label image of a mask, or None: ``FOLDER/instances/<name>.tif`` (or .tiff, .png) for
    ``FOLDER/masks/<name>.*`` (a dataset; ``<name>`` may hold sub-folders, ``batch/a``, as evaluate names
    masks), ``FOLDER/instances/<stem>.tif`` for ``FOLDER/<stem>.png`` (a folder of predicted masks, where
    ``--instances`` writes them)."""
    mask = Path(mask_path)
    # the nearest folder named masks above the mask: its sibling instances/ holds the same sub-folders
    masks = next((folder for folder in mask.parents if folder.name == "masks"), None)
    if masks is not None:
        named = masks.parent / INSTANCES_FOLDER / mask.relative_to(masks).parent / mask.stem
    else:
        named = mask.parent / INSTANCES_FOLDER / mask.stem
    for suffix in LABEL_SUFFIXES:
        candidate = named.with_name(named.name + suffix)
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

    def add(self, table: ObjectTable, counts: Sequence[ClassCount], *, coco: CocoImage | None = None) -> None:
        """The rows of one image, written whole into its part files (the counts last: they mark the image
        done), and its COCO annotations when given. The image's name (``table.image``) may hold sub-folders,
        ``batch2/a``, as a job names images."""
        from pixelwise.files import atomic_path

        name = table.image
        if not name or name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"an image needs a relative name for its part files, got {name!r}")
        texts = [] if coco is None else [(_COCO_SUFFIX, json.dumps(coco.to_dict(), separators=(",", ":")))]
        texts.append((_ROWS_SUFFIX, _csv_text(table.header, table.rows())))
        texts.append((_COUNTS_SUFFIX, _csv_text(SUMMARY_COLUMNS, (count.row() for count in counts))))
        stale = self.parts / f"{name}{_COCO_SUFFIX}"
        if coco is None and stale.is_file():
            stale.unlink()  # an earlier run's annotations of this image are no longer its own
        for suffix, text in texts:
            part = self.parts / f"{name}{suffix}"
            part.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(part) as tmp:
                tmp.write_text(text)

    def forget(self, name: str) -> None:
        """Remove the parts of image ``name`` (its counts first: it is no longer done)."""
        for suffix in (_COUNTS_SUFFIX, _ROWS_SUFFIX, _COCO_SUFFIX):
            (self.parts / f"{name}{suffix}").unlink(missing_ok=True)

    def finish(self, names: Collection[str] | None = None, *, keep_parts: bool = False) -> tuple[int, int]:
        """Join the parts (by image name) into the tables; (objects, images) written.

        ``names``: the images to join (default every image done); one without parts is left out (``done``
        says which have them). ``keep_parts``: leave the parts for a later ``finish`` (a job that may run
        again); else they are removed. ``objects.coco.json`` is written when an image joined has COCO
        annotations. Images measured with different bands give different intensity columns: the header is
        their union in order of first appearance, and a value an image lacks is empty."""
        from pixelwise.files import atomic_path

        joined = sorted(self.done() if names is None else self.done() & set(names))
        header: list[str] = []
        tables: list[list[dict[str, str]]] = []
        for name in joined:
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
        for name in joined:
            with open(self.parts / f"{name}{_COUNTS_SUFFIX}", newline="") as part:
                summary_rows += list(csv.reader(part))[1:]
        with atomic_path(self.folder / SUMMARY_FILE) as tmp:
            tmp.write_text(_csv_text(SUMMARY_COLUMNS, summary_rows))
        annotated = [name for name in joined if (self.parts / f"{name}{_COCO_SUFFIX}").is_file()]
        if annotated:
            from pixelwise.instances.coco import coco_document

            images = [json.loads((self.parts / f"{name}{_COCO_SUFFIX}").read_text()) for name in annotated]
            with atomic_path(self.folder / COCO_FILE) as tmp:
                tmp.write_text(json.dumps(coco_document(images), separators=(",", ":")))
        if not keep_parts:
            shutil.rmtree(self.parts, ignore_errors=True)
        return len(objects), len(joined)


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
