"""The ``instances`` sink (``--instances`` on ``predict`` and ``classical``): each image's objects, measured.

For the image named ``<name>`` it writes, into ``OUT/instances/``:

- ``<name>.tif``: the objects as a 32-bit label image (``instances.io.write_label_image``; the sink's ``path``,
  what the job checks and resumes by);
- ``<name>.geojson``: each object as a polygon (``instances.geojson``), in map coordinates when the image has
  a georeference (``ImageInfo.georeference``);
- its rows of ``objects.csv`` and ``objects_summary.csv`` (and, with ``coco``, its annotations in
  ``objects.coco.json``): part files per image (``instances.io.ObjectsWriter``), joined by ``finish`` once
  the job's images are done, so a run that stops keeps every finished image's rows and a rerun of the same
  command completes the tables. The tables list the job's finished images only: an image that failed has
  no rows, and ``discard`` takes back what a failed image's commit had written.

Mean intensities are the file's stored values (``data.io.read_stored``: 0-255 of an 8-bit image, the counts
of a 16-bit one), read again from the input file at commit, so they compare across images; the predictor's
input, scaled per image to [0, 1], would not. Without the input file (``inputs`` not given, or a file the
data layer cannot read whole) the table has no intensity columns for that image, with a note.

Whole image: the objects of an image are found at ``commit`` on its whole class mask (the watershed and the
measurements need every object whole). An image whose objects would not fit in memory fails in one line at
``open``, before any prediction. Out of core (the gigapixel sinks), objects across band borders would be
found on bands read with a margin above and below wider than the largest object: each band keeps the objects
whose first pixel (in raster order, as ``instances.labels`` numbers them) lies in its own rows, whole thanks
to the margin, and drops the others, which the band holding their first pixel keeps; labels are offset by
the objects of the bands before. Measurements stay per object, so the tables and exports need no change.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelwise.errors import InputError, PixelwiseError
from pixelwise.instances.io import INSTANCES_FOLDER, ObjectsWriter
from pixelwise.instances.labels import DEFAULT_MIN_SIZE

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo
    from pixelwise.sinks.base import PredictionBand

# what finding and measuring objects allocates at its peak, per pixel of the image (measured with tracemalloc
# on 1024² with 600 discs: 115 bytes: int64 components, float64 distances, the watershed's queues ...)
OBJECT_BYTES_PER_PIXEL = 120


class InstanceSink:
    """Objects per image, ``OUT/instances/<name>.tif`` + ``.geojson`` + rows of the tables (module docstring).

    ``out``: the job's output folder (the writer names an image by its path in it). ``split``, ``min_size``:
    ``instances.instance_labels``'. ``probabilities``: take the network's probabilities for the split.
    ``coco``: also ``objects.coco.json``. ``inputs``: image name -> its input file (mean intensities in
    stored values; COCO's ``file_name``).
    """

    name = "instances"
    needs_pixels = False

    def __init__(
        self,
        *,
        out: str | os.PathLike[str],
        split: bool = True,
        min_size: int = DEFAULT_MIN_SIZE,
        probabilities: bool = False,
        coco: bool = False,
        inputs: Mapping[str, Path] | None = None,
    ) -> None:
        if min_size < 0:
            raise PixelwiseError(f"--min-size {min_size}: give a number of pixels, 0 or more")
        if coco:
            from pixelwise.data.importers.rle import mask_api

            mask_api("--coco (objects as COCO annotations)")  # the extra missing is one line before any work
        self.out = Path(out)
        self.split = split
        self.min_size = min_size
        self.needs_probabilities = probabilities
        self.coco = coco
        self.inputs = dict(inputs or {})
        self.joined: tuple[int, int] | None = None  # (objects, images) in the tables, once finished

    def settings(self) -> dict[str, object]:
        """What makes two runs' objects the same (a job's identity)."""
        return {
            "split": self.split,
            "min_size": self.min_size,
            "probabilities": self.needs_probabilities,
            "coco": self.coco,
        }

    def path(self, out: Path, name: str) -> Path:
        return out / INSTANCES_FOLDER / f"{name}.tif"

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> _InstanceWriter:
        if classes is None:
            raise ValueError("objects need the classes of a class mask")
        name = path.relative_to(self.out / INSTANCES_FOLDER).as_posix()[: -len(".tif")]
        _check_room(info, classes, probabilities=self.needs_probabilities, image=self.inputs.get(name))
        return _InstanceWriter(self, path, name, info, classes)

    def finish(self, out: Path, names: Collection[str]) -> None:
        """Join the rows (and annotations) of the finished images ``names`` into the tables."""
        writer = ObjectsWriter(out / INSTANCES_FOLDER)
        missing = sorted(set(names) - writer.done())
        if not names and not writer.parts.is_dir():
            return
        self.joined = writer.finish(names, keep_parts=True)
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            warnings.warn(
                f"{len(missing)} finished images have no rows in {writer.parts} ({shown}; was it removed?); the "
                "tables leave them out: run the command again with --overwrite to measure them",
                UserWarning,
                stacklevel=2,
            )


class _InstanceWriter:
    """One image: its labels (and probabilities) gathered band by band; objects found and written at commit."""

    def __init__(self, sink: InstanceSink, path: Path, name: str, info: ImageInfo, classes: ClassSpec) -> None:
        self.sink, self.path, self.name, self.info, self.classes = sink, path, name, info, classes
        self.labels = np.zeros((info.height, info.width), np.uint8)
        # float16 as the probability sink keeps them: the split needs a landscape, not seven digits
        shape = (classes.num_classes, info.height, info.width)
        self.probabilities = np.zeros(shape, np.float16) if sink.needs_probabilities else None
        self.written: list[Path] = []
        self.objects = ObjectsWriter(sink.out / INSTANCES_FOLDER)

    def write(self, band: PredictionBand) -> None:
        rows = slice(band.top, band.top + band.rows)
        self.labels[rows] = band.labels
        if self.probabilities is not None:
            if band.probabilities is None:
                raise ValueError("the instances sink asked for the probabilities")
            self.probabilities[:, rows] = band.probabilities

    def commit(self) -> None:
        from pixelwise.instances.boundary import without_boundary
        from pixelwise.instances.geojson import object_features, write_geojson
        from pixelwise.instances.io import write_label_image
        from pixelwise.instances.measure import image_objects

        # everything is computed before anything is written: a failure here leaves no file
        found = image_objects(
            self.labels,
            self.classes,
            name=self.name,
            probabilities=self.probabilities,
            pixels=self._stored_pixels(),
            split=self.sink.split,
            min_size=self.sink.min_size,
        )
        self.labels = self.probabilities = None  # type: ignore[assignment]
        classes = without_boundary(self.classes)
        georeference = self.info.georeference
        features = object_features(
            found.instances,
            classes,
            name=self.name,
            transform=georeference.transform if georeference is not None else None,
            crs=georeference.crs if georeference is not None else None,
        )
        coco = None
        if self.sink.coco:
            from pixelwise.instances.coco import image_annotations

            coco = image_annotations(found.instances, classes, file_name=self._file_name())
        try:
            self.written.append(self.path)
            write_label_image(self.path, found.instances.labels)
            geojson = self.path.with_suffix(".geojson")
            self.written.append(geojson)
            write_geojson(geojson, features)
            self.objects.add(found.table, found.counts, coco=coco)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Take back what this image wrote (a later sink's commit failed): no file, no rows."""
        self.objects.forget(self.name)
        for path in self.written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.written = []

    def _stored_pixels(self) -> np.ndarray | None:
        from pixelwise.data.io import read_stored

        image = self.sink.inputs.get(self.name)
        if image is None:
            return None
        try:
            pixels = read_stored(image)
        except PixelwiseError as error:
            warnings.warn(f"no mean intensities for its objects: {error}", UserWarning, stacklevel=2)
            return None
        if pixels.shape[:2] != self.labels.shape:
            warnings.warn(
                f"no mean intensities for its objects: the file is {pixels.shape[1]}x{pixels.shape[0]}, the "
                f"mask {self.labels.shape[1]}x{self.labels.shape[0]} (another level or scale)",
                UserWarning,
                stacklevel=2,
            )
            return None
        return pixels

    def _file_name(self) -> str:
        image = self.sink.inputs.get(self.name)
        return f"{self.name}{image.suffix}" if image is not None else self.name


def _check_room(info: ImageInfo, classes: ClassSpec, *, probabilities: bool, image: Path | None) -> None:
    """Refuse, in one line, an image whose objects would not fit in memory (they need it whole)."""
    from pixelwise.data.memory import MEMORY_SHARE, format_bytes, memory_room

    per_pixel = OBJECT_BYTES_PER_PIXEL + (2 * classes.num_classes if probabilities else 0) + 4 * info.bands
    needed = info.pixels * per_pixel
    room = memory_room()
    if room is None or needed <= MEMORY_SHARE * room.bytes:
        return
    megapixels = info.pixels / 1e6
    raise InputError(
        f"{image or 'the image'}: --instances finds objects on the whole image in memory: {info.width}x{info.height} "
        f"({megapixels:,.0f} megapixels) needs about {format_bytes(needed)}, and {room.said()}; predict it "
        "without --instances (masks are written band by band), or cut it into smaller images"
    )
