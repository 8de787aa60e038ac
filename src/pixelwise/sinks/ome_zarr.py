"""Class probabilities of any size as OME-Zarr: ``OUT/probabilities/<name>.ome.zarr``.

An OME-NGFF 0.4 image (zarr format 2, ``/`` chunk keys): one multiscale level ``0`` of shape (K, H, W),
float16 (as the ``.npy`` of ``--save-probs`` for ordinary images), chunks of 1 × ``CHUNK`` × ``CHUNK``,
axes ``c`` (the classes: named, with their colours, in ``omero.channels``) and ``y``, ``x`` (in micrometres
where the input said its resolution). napari, QuPath (through Bio-Formats) and any zarr library read it.
Needs zarr, part of the ``[wsi]`` extra.

Whole rows of chunks are written as the bands finish, into a hidden folder beside the target
(``.<name>.ome.zarr.resume.tmp``) that also records how many rows are done, and renamed onto the target at
the end: a killed run resumes at its last finished row of chunks, and the folder appears whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelwise.errors import PixelwiseError
from pixelwise.instances.io import PROBABILITY_FOLDER
from pixelwise.sinks.base import PredictionBand
from pixelwise.sinks.spill import SUFFIX, BlockCollector

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.image_info import ImageInfo

CHUNK = 256

_PROGRESS = "pixelwise-progress.json"
WSI_EXTRA = "pip install 'pixelwise[wsi]'"


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise PixelwiseError(f"--save-probs on a large image writes OME-Zarr, which needs zarr: {WSI_EXTRA}") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise PixelwiseError(f"OME-Zarr needs zarr 3 or later, found {zarr.__version__}: {WSI_EXTRA}")
    return zarr


class OmeZarrProbabilitySink:
    """Class probabilities as OME-Zarr, ``OUT/probabilities/<name>.ome.zarr``, resumable (``key``, ``resume``:
    as ``TiledMaskSink``)."""

    name = "probabilities-zarr"
    needs_probabilities = True
    needs_pixels = False

    def __init__(self, *, key: str = "", resume: bool = True) -> None:
        _zarr()  # a missing extra is said before any work
        self.key = key
        self.resume = resume

    def path(self, out: Path, name: str) -> Path:
        return out / PROBABILITY_FOLDER / f"{name}.ome.zarr"

    def resume_row(self, path: Path, info: ImageInfo) -> int:
        return _progress(_partial(path), self._identity(info)) if self.resume else 0

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> OmeZarrWriter:
        if classes is None:
            raise ValueError("probabilities need the classes")
        return OmeZarrWriter(path, info, classes, self._identity(info), resume=self.resume)

    def _identity(self, info: ImageInfo) -> dict[str, Any]:
        return {"key": self.key, "height": info.height, "width": info.width}


class OmeZarrWriter:
    def __init__(
        self, path: Path, info: ImageInfo, classes: ClassSpec, identity: dict[str, Any], *, resume: bool
    ) -> None:
        zarr = _zarr()
        self.path, self.identity = path, identity
        self.partial = _partial(path)
        done = _progress(self.partial, identity) if resume else 0
        shape = (classes.num_classes, info.height, info.width)
        if done == 0:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            root = zarr.open_group(self.partial, mode="w", zarr_format=2)
            root.attrs.update(_attributes(path, info, classes))
            self.array = root.create_array(
                "0",
                shape=shape,
                chunks=(1, CHUNK, CHUNK),
                dtype="float16",
                fill_value=0,
                chunk_key_encoding={"name": "v2", "separator": "/"},
            )
            self._record(0)
        else:
            self.array = zarr.open_array(self.partial / "0", mode="r+", zarr_format=2)
        self.blocks = BlockCollector(
            height=info.height, rows=CHUNK, start=done, tail=(classes.num_classes, info.width), dtype="float16"
        )

    def write(self, band: PredictionBand) -> None:
        if band.probabilities is None:
            raise ValueError("the OME-Zarr sink needs the probabilities")
        for top, block in self.blocks.add(band.top, np.moveaxis(band.probabilities, 0, 1)):
            self.array[:, top : top + len(block)] = np.moveaxis(block, 1, 0)
            self._record(top + len(block))

    def commit(self) -> None:
        if not self.blocks.complete:
            raise ValueError(f"{self.path}: rows {self.blocks.next}.. never came")
        (self.partial / _PROGRESS).unlink()
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.path, old)
            os.replace(self.partial, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.partial, self.path)

    def discard(self) -> None:
        # the partial folder stays for the next run of the same job to resume, unless it holds nothing
        if self.blocks.next == 0:
            shutil.rmtree(self.partial, ignore_errors=True)

    def _record(self, rows: int) -> None:
        from pixelwise.files import atomic_path

        with atomic_path(self.partial / _PROGRESS) as tmp:
            tmp.write_text(json.dumps({**self.identity, "rows": rows}))


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}{SUFFIX}")


def _progress(partial: Path, identity: dict[str, Any]) -> int:
    """Rows a partial folder of these settings holds (0: none, or of other settings)."""
    try:
        record = json.loads((partial / _PROGRESS).read_text())
    except (OSError, ValueError):
        return 0
    if not isinstance(record, dict) or {key: record.get(key) for key in identity} != identity:
        return 0
    return int(record.get("rows", 0))


def _attributes(path: Path, info: ImageInfo, classes: ClassSpec) -> dict[str, Any]:
    """OME-NGFF 0.4 ``multiscales`` (one level) and ``omero`` channels named after the classes."""
    unit = {"unit": "micrometer"} if info.mpp is not None else {}
    scale = info.mpp if info.mpp is not None else 1.0
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": path.name.removesuffix(".ome.zarr"),
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", **unit},
                    {"name": "x", "type": "space", **unit},
                ],
                "datasets": [
                    {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, scale, scale]}]}
                ],
            }
        ],
        "omero": {
            "channels": [
                {
                    "label": name,
                    "color": "".join(f"{value:02X}" for value in color),
                    "window": {"start": 0.0, "end": 1.0, "min": 0.0, "max": 1.0},
                    "active": True,
                }
                for name, color in zip(classes.names, classes.colors, strict=True)
            ]
        },
        "pixelwise": {"classes": classes.to_dict(), "values": "class probabilities"},
    }
