"""Image files in, mask files out, for images of any size: what ``pixelwise predict`` and
``Predictor.predict_file`` share on top of ``pixelwise.jobs``.

- **Which file per image** (``--mask-format auto|png|tiff``): ``auto`` writes a palette PNG for an ordinary
  image and a tiled pyramidal TIFF (``sinks.tiled_tiff``) for an image read by region (a slide, a tiled or
  pyramidal TIFF) or one over ``WHOLE_IMAGE_MAX_PIXELS``; a PNG asked for above the limit is refused with a
  line naming the TIFF. When any input is georeferenced, ``auto`` gives every image of the run a GeoTIFF
  (``sinks.geotiff``: tiled, written band by band, so a huge georeferenced raster is bounded in memory too,
  with its CRS and transform but no pyramid). ``--save-probs`` follows: ``.npy`` beside a PNG or a GeoTIFF,
  OME-Zarr beside a tiled TIFF.
- **Which level** (``--level``, ``--mpp``, or the resolution the model was trained at): ``data.pyramid``.
- **Which tiles**: the foreground mask (``inference.foreground``) skips empty background; on by default for
  whole-slide files and for pyramidal RGB TIFFs that say a microscope resolution (≤ ``MICROSCOPE_MPP``
  µm/px), where glass around tissue is the rule; off for other images (an aerial scene, a photo, a grey
  mosaic has no background that is safe to skip), where ``--foreground-mask`` turns it on.
- **Resuming**: a resumable sink (``resume_row``) keeps the rows it finished beside its output; the task
  starts the predictor at the fewest rows any sink holds, so a killed run goes on at its last finished block.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from pixelwise.errors import InputError, PixelwiseError

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageInfo, ImageSource
    from pixelwise.inference.spec import InferenceSpec
    from pixelwise.jobs import Item, JobReport, Task
    from pixelwise.sinks import MaskSink, PredictionBand, SinkWriter


class Predicting(Protocol):
    """What of a ``Predictor`` this module uses (the predictor imports this module, not the other way)."""

    tile_size: int
    overlap: float
    spec: InferenceSpec

    @property
    def classes(self) -> ClassSpec: ...

    def tiles(self, height: int, width: int) -> int: ...

    def stream(
        self,
        image: ImageSource,
        *,
        output: Literal["labels", "probabilities"],
        progress: Callable[[int], Any] | None = None,
        start_row: int = 0,
        tile_filter: Callable[[int, int, int, int], bool] | None = None,
    ) -> Iterator[Any]: ...


MASK_FORMATS = ("auto", "png", "tiff")
# whole-image PNGs (mask, overlay) are held in memory whole: up to 10,000 × 10,000
WHOLE_IMAGE_MAX_PIXELS = 100_000_000
MICROSCOPE_MPP = 20.0


@dataclass(frozen=True)
class OutputOptions:
    """What to write and how to read: ``mask_format`` (auto, png, tiff), ``probabilities``, ``overlay``,
    the pyramid ``level`` or resolution ``mpp``, and ``foreground`` (None: the default above)."""

    mask_format: str = "auto"
    probabilities: bool = False
    overlay: bool = False
    level: int | None = None
    mpp: float | None = None
    foreground: bool | None = None

    def __post_init__(self) -> None:
        if self.mask_format not in MASK_FORMATS:
            raise PixelwiseError(f"--mask-format {self.mask_format!r}: choose one of {', '.join(MASK_FORMATS)}")
        if self.level is not None and self.mpp is not None:
            raise PixelwiseError(
                "--level and --mpp exclude each other: give the level, or the resolution to pick it by"
            )
        if self.level is not None and self.level < 0:
            raise PixelwiseError(f"--level must be 0 (full resolution) or more, got {self.level}")
        if self.mpp is not None and not self.mpp > 0:
            raise PixelwiseError(f"--mpp must be a positive number of microns per pixel, got {self.mpp}")


@dataclass
class FolderRun:
    """What ``predict_to_folder`` did: the job's report, the stats, and the mask file of every image by name."""

    report: JobReport
    stats: RunStats
    masks: dict[str, Path]


@dataclass
class RunStats:
    """What the tasks did, for the command's summary line."""

    tiles: int = 0
    skipped: int = 0
    resumed: list[str] = field(default_factory=list)


def read_by_region(path: Path) -> bool:
    """Whether ``path`` is opened by a reader of slides or of tiled and pyramidal TIFFs, which get a tiled
    pyramidal TIFF mask (a raster of ``data.rasters`` keeps its own rule: a GeoTIFF, or the size limit)."""
    from pixelwise.data.sources import IMAGE_READERS, READ_SLIDE, READ_TILED

    for reader in IMAGE_READERS:
        if reader.accepts(path):
            return reader in (READ_SLIDE, READ_TILED)
    return False


def mask_formats(items: Sequence[Item], options: OutputOptions) -> dict[str, str]:
    """``png``, ``tiff`` or ``geotiff`` for every item (by name), from the file headers; an overlay of an image whose mask
    is a TIFF is refused here, before any work."""
    from pixelwise.data.io import image_size
    from pixelwise.data.raster_files import georeferenced

    # a georeferenced input makes every mask of the run a GeoTIFF: one kind of file per run, as the GIS wants
    geographic = options.mask_format == "auto" and any(georeferenced(item.path) for item in items)
    formats: dict[str, str] = {}
    for item in items:
        chosen = "geotiff" if geographic else options.mask_format
        if chosen == "auto":
            chosen = "tiff" if read_by_region(item.path) else "png"
            if chosen == "png":
                try:
                    height, width = image_size(item.path)
                    chosen = "tiff" if height * width > WHOLE_IMAGE_MAX_PIXELS else "png"
                except PixelwiseError:
                    pass  # a damaged image fails in its turn, said by the job
        formats[item.name] = chosen
        if chosen == "tiff" and options.overlay:
            raise PixelwiseError(
                f"{item.path}: --overlay draws a whole-image PNG, and this image gets a tiled TIFF mask; leave out "
                "--overlay and open the mask over the image in QuPath (or another slide viewer)"
            )
    return formats


class FormatSink:
    """One output per image whose format depends on the image: the sink of ``choices[formats[name]]``."""

    def __init__(self, name: str, choices: dict[str, MaskSink], formats: dict[str, str]) -> None:
        self.name = name
        self.choices = choices
        self.formats = formats
        self.needs_probabilities = any(sink.needs_probabilities for sink in choices.values())
        self.needs_pixels = any(sink.needs_pixels for sink in choices.values())
        self._by_path: dict[Path, MaskSink] = {}

    def path(self, out: Path, name: str) -> Path:
        sink = self.choices[self.formats.get(name, "png")]
        target = sink.path(out, name)
        self._by_path[target] = sink
        return target

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> SinkWriter:
        return self._by_path[path].open(path, info, classes)

    def resume_row(self, path: Path, info: ImageInfo) -> int:
        sink = self._by_path.get(path)
        resume = getattr(sink, "resume_row", None)
        return int(resume(path, info)) if resume is not None else 0


class WholeImageLimit:
    """A whole-image sink (PNG) that refuses an image over ``WHOLE_IMAGE_MAX_PIXELS``, naming the tiled TIFF."""

    def __init__(self, sink: MaskSink, what: str) -> None:
        self.sink, self.what = sink, what
        self.name = sink.name
        self.needs_probabilities, self.needs_pixels = sink.needs_probabilities, sink.needs_pixels

    def path(self, out: Path, name: str) -> Path:
        return self.sink.path(out, name)

    def open(self, path: Path, info: ImageInfo, classes: ClassSpec | None) -> SinkWriter:
        if info.pixels > WHOLE_IMAGE_MAX_PIXELS:
            raise InputError(
                f"{path}: a {self.what} of {info.width:,} × {info.height:,} pixels is over the limit of "
                f"{WHOLE_IMAGE_MAX_PIXELS / 1e6:.0f} megapixels for whole-image PNGs; write a tiled TIFF mask "
                "instead: --mask-format tiff (or auto)"
            )
        return self.sink.open(path, info, classes)


def prediction_sinks(formats: dict[str, str], options: OutputOptions, *, key: str, resume: bool) -> list[MaskSink]:
    """The sinks of a prediction job: the mask, then the overlay and the probabilities when asked for."""
    from pixelwise.sinks import make_sink

    used = set(formats.values())
    tiled = {"key": key, "resume": resume}
    sinks: list[MaskSink] = [
        FormatSink(
            "mask",
            {
                "png": WholeImageLimit(make_sink("mask"), "PNG mask"),
                **({"tiff": make_sink("tiled-mask", **tiled)} if "tiff" in used else {}),
                **({"geotiff": make_sink("geotiff")} if "geotiff" in used else {}),
            },
            formats,
        )
    ]
    if options.overlay:
        sinks.append(WholeImageLimit(make_sink("overlay"), "PNG overlay"))
    if options.probabilities:
        choices = {"png": make_sink("probabilities"), "geotiff": make_sink("probabilities")}
        if "tiff" in used:
            choices["tiff"] = make_sink("probabilities-zarr", **tiled)
        sinks.append(FormatSink("probabilities", choices, formats))
    return sinks


def level_opener(
    options: OutputOptions, model_mpp: float | None, open_source: Callable[[Item], ImageSource] | None = None
) -> Callable[[Item], ImageSource]:
    """How the job opens an item: ``open_source`` (default: its reader, ``data.sources.open_image``), at the
    level the options (or the model's resolution) pick."""

    def open_item(item: Item) -> ImageSource:
        from pixelwise.data.pyramid import at_level
        from pixelwise.data.sources import open_image

        source = open_source(item) if open_source is not None else open_image(item.path)
        return at_level(source, level=options.level, mpp=options.mpp, model_mpp=model_mpp)

    return open_item


def tiles_at_level(
    predictor: Predicting, options: OutputOptions, opener: Callable[[Item], ImageSource]
) -> Callable[[Item], int]:
    """An item's tiles for the progress bar: from the header for an image read whole, else at its level."""

    def units(item: Item) -> int:
        from pixelwise.data.io import image_size

        if not read_by_region(item.path):
            return predictor.tiles(*image_size(item.path))
        source = opener(item)
        try:
            return predictor.tiles(source.info.height, source.info.width)
        finally:
            source.close()

    return units


def prediction_task(
    predictor: Predicting, options: OutputOptions, sinks: Sequence[MaskSink], out: Path, stats: RunStats
) -> Task:
    """The predictor's bands as the job's, from the row the sinks resume at, skipping background tiles."""
    from pixelwise.inference.tiling import tile_grid, tile_starts

    def task(
        item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
    ) -> Iterator[PredictionBand]:
        from pixelwise.sinks import PredictionBand

        info = source.info
        start = min(_resume_row(sink, out, item, info) for sink in sinks)
        tile_height = min(predictor.tile_size, info.height)
        if start:
            stats.resumed.append(item.name)
            tops = tile_starts(info.height, predictor.tile_size, predictor.overlap)
            above = sum(1 for top in tops if top + tile_height <= start)
            progress(above * len(tile_starts(info.width, predictor.tile_size, predictor.overlap)))
            warnings.warn(f"resuming at row {start:,} of {info.height:,}, where an earlier run stopped", stacklevel=2)
        tile_filter = _tile_filter(source, options, predictor, stats)
        stats.tiles += predictor.tiles(info.height, info.width)
        if start >= info.height:
            return  # every row is held: the sinks only write their files
        output: Literal["labels", "probabilities"] = "probabilities" if probabilities else "labels"
        ignore = predictor.classes.ignore_index
        for band in predictor.stream(
            source, output=output, progress=progress, start_row=start, tile_filter=tile_filter
        ):
            if probabilities:
                labels = band.values.argmax(axis=0).astype(np.uint8)
                yield PredictionBand(
                    band.top, without_data(source, band.top, labels, ignore), probabilities=band.values
                )
            else:
                yield PredictionBand(band.top, without_data(source, band.top, band.values, ignore))

    def _tile_filter(
        source: ImageSource, options: OutputOptions, predictor: Predicting, stats: RunStats
    ) -> Callable[[int, int, int, int], bool] | None:
        if not (options.foreground if options.foreground is not None else foreground_by_default(source)):
            return None
        from pixelwise.inference.foreground import find_foreground

        found = find_foreground(source)
        info = source.info
        if found is None:
            warnings.warn("no background found to skip: every tile runs", stacklevel=2)
            return None
        tile_height, tile_width = min(predictor.tile_size, info.height), min(predictor.tile_size, info.width)
        grid = tile_grid(info.height, info.width, predictor.tile_size, predictor.overlap)
        skipped = sum(1 for top, left in grid if not found.wants(top, left, tile_height, tile_width))
        stats.skipped += skipped
        warnings.warn(
            f"foreground on {100 * found.fraction:.0f}% of the image: {skipped:,} of {len(grid):,} tiles are "
            "background and skipped, their pixels class 0 (--no-foreground-mask runs every tile)",
            stacklevel=2,
        )
        return found.wants

    return task


def without_data(source: ImageSource, top: int, labels: np.ndarray, ignore: int) -> np.ndarray:
    """Pixels without data (a raster's no-data value, ``data.rasters``) get the ignore label."""
    if not getattr(source, "may_miss", False):
        return labels
    missing = source.missing(top, 0, labels.shape[0], labels.shape[1])  # type: ignore[attr-defined]
    return labels if missing is None else np.where(missing, np.uint8(ignore), labels)


def foreground_by_default(source: ImageSource) -> bool:
    """Slides, and pyramidal RGB images at a microscope's resolution: there, glass around tissue is the rule."""
    from pixelwise.data.slides import SlideSource

    if isinstance(source, SlideSource):
        return True
    info = source.info
    return len(info.levels) > 1 and info.bands == 3 and info.mpp is not None and info.mpp <= MICROSCOPE_MPP


def _resume_row(sink: MaskSink, out: Path, item: Item, info: ImageInfo) -> int:
    resume = getattr(sink, "resume_row", None)
    return int(resume(sink.path(out, item.name), info)) if resume is not None else 0


def file_identity(path: Path) -> dict[str, Any]:
    """A model file as a job's record knows it: where it is, its size and its time (a model trained again
    into the same place is another model)."""
    file = path.resolve()
    status = file.stat() if file.exists() else None
    return {
        "path": str(file),
        "size": status.st_size if status else None,
        "modified": status.st_mtime_ns if status else None,
    }


def job_key(identity: dict[str, Any]) -> str:
    """The key a resumable sink stores with its rows: a job's identity as canonical JSON."""
    return json.dumps(identity, sort_keys=True, default=str)


def predict_to_folder(
    predictor: Predicting,
    images: Sequence[Path],
    out: Path,
    options: OutputOptions,
    *,
    settings: dict[str, Any],
    overwrite: bool = False,
    quiet: bool = True,
) -> FolderRun:
    """``images`` predicted into ``out`` as ``pixelwise predict`` does (``settings``: what identifies the
    model and its options, for the job's record and for resuming)."""
    from pixelwise.jobs import Job, check_job, collect_items, run_job

    items = collect_items(images)
    formats = mask_formats(items, options)
    identity = {**settings, "options": asdict(options)}
    sinks = prediction_sinks(
        formats, options, key=job_key({**identity, "outputs": _names(options)}), resume=not overwrite
    )
    job = Job(
        items,
        out,
        sinks,
        classes=predictor.classes,
        settings=identity,
        overwrite=overwrite,
        input_folders=[path for path in images if path.is_dir()],
        input_files=[item.path for item in items],
    )
    check_job(job)
    opener = level_opener(options, getattr(predictor.spec, "mpp", None))
    stats = RunStats()
    report = run_job(
        job,
        prediction_task(predictor, options, sinks, out, stats),
        units=tiles_at_level(predictor, options, opener),
        desc="predict",
        unit="tile",
        quiet=quiet,
        open_source=opener,
    )
    return FolderRun(report, stats, {item.name: sinks[0].path(out, item.name) for item in items})


def _names(options: OutputOptions) -> list[str]:
    return ["mask", *(["overlay"] if options.overlay else []), *(["probabilities"] if options.probabilities else [])]
