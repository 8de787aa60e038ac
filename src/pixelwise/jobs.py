"""One job for images in, outputs out: the loop that ``predict`` and ``classical`` share.

A job lists its inputs (``Item``: a file and the name its outputs take), checks every output before any
work (never over an input, never two images onto one file, never over files of another run unless
``overwrite``), then runs a ``Task`` per image, feeding the bands it yields to the ``MaskSink`` writers,
with one progress bar. Each image's files appear whole or not at all.

Nothing is lost and nothing is done twice:

- one bad image (an ``errors.InputError``: damaged, too large, of a kind the model cannot take; or a
  ``MemoryError``, or PyTorch's "can't allocate memory") does not stop the batch: its writers are discarded,
  its one-line reason printed, and the others go on; the job's ``JobReport`` lists the failures (the CLI
  then exits 2). Any other error (a bad setting, which would fail every image alike) stops the job at once;
- the job records every finished image in ``OUT/.pixelwise-job.jsonl`` (``files.JOB_MANIFEST``) under a
  fingerprint of its settings (the model, the options, the outputs asked for). Running the same job again
  finishes only what is missing, without ``--overwrite``; files of a job with other settings (or of
  nobody's) are replaced only with ``--overwrite``, which also redoes everything.

Where the images are processed is the ``Executor``'s business: ``InProcess`` (the default) runs them here one
after another; ``pixelwise.cluster.DaskExecutor`` runs the same ``process_item`` on the workers of a Dask
cluster. Either way this process holds the folder's lock, checks the outputs and keeps the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pixelwise.errors import InputError, PixelwiseError
from pixelwise.files import JOB_MANIFEST, atomic_path, check_apart, output_lock
from pixelwise.sinks import MaskSink, PredictionBand, SinkWriter

if TYPE_CHECKING:
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.sources import ImageSource


@dataclass(frozen=True)
class Item:
    """One input image: its file, and ``name``, what its outputs are called: its path relative to the folder
    it was found in, without the suffix (``a``, ``batch2/a``); its stem when given as a file."""

    path: Path
    name: str


class Task(Protocol):
    """The work of a command on one image: the bands of its result, top to bottom.

    ``probabilities``: a sink needs them in the bands. ``progress(n)``: n units of work done.
    """

    def __call__(
        self, item: Item, source: ImageSource, *, probabilities: bool, progress: Callable[[int], Any]
    ) -> Iterator[PredictionBand]: ...


@dataclass(frozen=True)
class Job:
    """What a job writes: ``items`` into ``out`` through ``sinks``, labelled with ``classes`` (None for region
    labels). ``settings``: what makes two runs the same job besides the sinks (JSON-ready: the model, the options). ``input_folders`` / ``input_files``:
    what it reads, which it must never write into. ``flag``: the option naming ``out``, for messages."""

    items: Sequence[Item]
    out: Path
    sinks: Sequence[MaskSink]
    classes: ClassSpec | None
    settings: dict[str, Any]
    overwrite: bool = False
    input_folders: Sequence[Path] = ()
    input_files: Sequence[Path] = ()
    flag: str = "--out"

    def targets(self, item: Item) -> list[Path]:
        return [sink.path(self.out, item.name) for sink in self.sinks]

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two runs the same job: the settings and the outputs asked for."""
        return {**self.settings, "outputs": [sink.name for sink in self.sinks]}


@dataclass
class JobReport:
    """What a run did: names written, names already complete from an earlier run of the same job, and
    (path, one-line reason) of every image that failed."""

    written: list[str] = field(default_factory=list)
    complete: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def failure(self, total: int) -> PixelwiseError:
        """The line a command ends with when images failed: the failure itself when the job had one image
        (``run_job`` said nothing else), else a count (each failure was said as it happened)."""
        if total == 1:
            return PixelwiseError(self.failed[0][1])
        first = self.failed[0][0]
        return PixelwiseError(
            f"{len(self.failed)} of {total} images failed ({first}{' and others' if len(self.failed) > 1 else ''}, "
            "each said above); the others are written: fix or remove the failed images and run the same command "
            "again, which finishes only what is missing"
        )


def collect_items(inputs: Iterable[Path]) -> list[Item]:
    """Image files from files and folders (a folder's images in its sub-folders too, named by their path
    within it), sorted; two images may not share a name."""
    from pixelwise.data.io import IMAGE_SUFFIXES, image_name, list_images, not_a_file

    items: list[Item] = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            items.extend(Item(image, image_name(image, entry)) for image in list_images(entry))
        elif entry.is_file():
            if entry.suffix.lower() not in IMAGE_SUFFIXES:
                raise PixelwiseError(
                    f"{entry}: not an image file; give images ({', '.join(sorted(IMAGE_SUFFIXES))}) or folders"
                )
            items.append(Item(entry, entry.stem))
        elif entry.exists() or entry.is_symlink():
            # a pipe or a device is said as what it is, and never opened (a pipe would block)
            raise PixelwiseError(f"{entry}: {not_a_file(entry)}, not an image file; give images or folders of images")
        else:
            raise PixelwiseError(f"{entry}: no such file or folder; give images or folders of images")
    if not items:
        raise PixelwiseError(f"no images in {', '.join(map(str, inputs))}; give images or folders of images")
    return items


def check_job(job: Job) -> None:
    """Everything that can be refused before any work: an output over an input or into an input folder, two
    images onto one output."""
    if job.out.exists() and not job.out.is_dir():
        raise PixelwiseError(f"{job.out}: exists and is not a folder; give a folder for {job.flag}")
    seen: dict[str, Path] = {}
    for item in job.items:
        if item.name in seen:
            raise PixelwiseError(
                f"{seen[item.name]} and {item.path} would both be written as {item.name!r}; rename one or write "
                f"them into different {job.flag} folders"
            )
        seen[item.name] = item.path
    targets = [path for item in job.items for path in job.targets(item)]
    check_apart(job.out, input_folders=job.input_folders, input_files=job.input_files, targets=targets, flag=job.flag)


Opener = Callable[[Item], "ImageSource"]  # how an item's image is opened


@dataclass(frozen=True)
class Outcome:
    """What became of one image: ``failure``, the one-line reason it failed (None: its files are written);
    ``notes``, the warnings it raised that were not said as they came (a worker's, said by the client)."""

    name: str
    failure: str | None = None
    notes: tuple[str, ...] = ()


Outcomes = Generator[Outcome, None, None]


class Executor(Protocol):
    """Where a job's images are processed: ``run`` puts every item through ``process_item`` and gives back
    its ``Outcome`` as it finishes, in any order, moving ``bar`` as it goes. An error other than an image's
    own (``process_item``) propagates and stops the job; closing the iterator stops the work.

    ``counts_units``: the bar counts the task's units (``run_job``'s ``units``, which the task reports as it
    goes); else it counts images (an executor that only hears of finished images).
    """

    counts_units: bool

    def run(
        self, job: Job, task: Task, items: Sequence[Item], *, open_source: Opener, bar: Any, quiet: bool
    ) -> Outcomes: ...


class InProcess:
    """The images one after another in this process, the bar moving with the task's units."""

    counts_units = True

    def run(
        self, job: Job, task: Task, items: Sequence[Item], *, open_source: Opener, bar: Any, quiet: bool
    ) -> Outcomes:
        for item in items:
            bar.set_postfix_str(item.name)
            with _notes(_say_above(bar, item, quiet)):
                outcome = process_item(job, task, item, open_source=open_source, progress=bar.update)
            yield outcome


def run_job(
    job: Job,
    task: Task,
    *,
    units: Callable[[Item], int] = lambda item: 1,
    desc: str = "run",
    unit: str = "image",
    quiet: bool = False,
    open_source: Callable[[Item], ImageSource] | None = None,
    executor: Executor | None = None,
) -> JobReport:
    """Run ``task`` on every image of ``job`` not already complete, writing through its sinks.

    ``units(item)``: the work an image is worth on the progress bar (``task`` reports it). ``open_source``:
    how an item's image is opened (default ``data.sources.open_image`` of its path). ``executor``: where the
    images are processed (default ``InProcess``). The folder is held for the run (``files.output_lock``) by
    this process, which alone keeps the record, as each image's outcome comes back.
    """

    from pixelwise.progress import progress_bar

    check_job(job)
    report = JobReport()
    runner: Executor = executor or InProcess()
    with output_lock(job.out):
        pending = _pending(job, report)
        if not pending:
            _finish_sinks(job, report)  # a run killed after its last image but before its tables
            return report
        manifest = _Manifest(job.out / JOB_MANIFEST, job.identity, fresh=not report.complete)
        by_name = {item.name: item for item in pending}
        total = sum(_units(units, item) for item in pending) if runner.counts_units else len(pending)
        shown_unit = unit if runner.counts_units else "image"
        with (
            progress_bar(total=total, desc=desc, unit=shown_unit, quiet=quiet) as bar,
            contextlib.closing(
                runner.run(job, task, pending, open_source=open_source or _open_path, bar=bar, quiet=quiet)
            ) as outcomes,
        ):
            for outcome in outcomes:
                item = by_name[outcome.name]
                say = _say_above(bar, item, quiet)
                for note in outcome.notes:
                    say(note)
                if outcome.failure is not None:
                    report.failed.append((item.path, outcome.failure))
                    if len(job.items) > 1:  # a job of one image ends with this line alone (JobReport.failure)
                        bar.write(f"pixelwise: error: {outcome.failure}", file=sys.stderr)
                    continue
                manifest.add(item.name)
                report.written.append(item.name)
        _finish_sinks(job, report)
    return report


def process_item(
    job: Job,
    task: Task,
    item: Item,
    *,
    open_source: Callable[[Item], ImageSource],
    progress: Callable[[int], Any] = lambda done: None,
) -> Outcome:
    """One image through ``task`` into every sink of ``job``; its files appear only when all of it succeeded.

    An image's own failure (an ``errors.InputError``: damaged, too large, of a kind the task cannot take; or
    memory short for it) is its ``Outcome.failure``; any other error propagates (it would fail every image).
    """
    try:
        source = open_source(item)
        _run_item(job, task, item, source, progress)
    except (InputError, MemoryError, RuntimeError) as error:
        if not _fails_one_image(error):  # any other RuntimeError stops the job, as a bug must
            raise
        return Outcome(item.name, failure=_failure_line(item, error))
    return Outcome(item.name)


def _finish_sinks(job: Job, report: JobReport) -> None:
    """A sink that joins its images' files into one (``finish(out, names)``: the objects' tables) does it now,
    over every image the job has finished, in this run or an earlier one; failed images are left out."""
    finished = [*report.complete, *report.written]
    for sink in job.sinks:
        finish = getattr(sink, "finish", None)
        if finish is not None:
            finish(job.out, finished)


def _pending(job: Job, report: JobReport) -> list[Item]:
    """The items to run; those complete from an earlier run of the same job go into ``report.complete``.
    Files of another run (or of nobody's) in the way are refused unless ``overwrite``."""
    same_job = not job.overwrite and _Manifest.matches(job.out / JOB_MANIFEST, job.identity)
    done = _Manifest.finished(job.out / JOB_MANIFEST) if same_job else set()
    pending = []
    for item in job.items:
        if item.name in done and all(path.exists() for path in job.targets(item)):
            report.complete.append(item.name)
        else:
            pending.append(item)
    # the files of an earlier run of this same job are its own to finish (an image interrupted between two
    # of its files); anything else in the way is replaced only when asked
    existing = [path for item in pending for path in job.targets(item) if path.exists()]
    if existing and not (same_job or job.overwrite):
        shown = ", ".join(str(path) for path in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise PixelwiseError(
            f"{len(existing)} output files exist already ({shown}), not from an earlier run of this same command; "
            f"add --overwrite to replace them or pick another {job.flag}"
        )
    return pending


def _open_path(item: Item) -> ImageSource:
    from pixelwise.data.sources import open_image

    return open_image(item.path)


def _run_item(job: Job, task: Task, item: Item, source: ImageSource, progress: Callable[[int], Any]) -> None:
    """One image through the task into every sink; its files appear only when all of it succeeded."""
    probabilities = any(sink.needs_probabilities for sink in job.sinks)
    pixels = any(sink.needs_pixels for sink in job.sinks)
    with contextlib.closing(source):
        writers: list[SinkWriter] = []
        try:
            for sink in job.sinks:
                writers.append(sink.open(sink.path(job.out, item.name), source.info, job.classes))
            for band in task(item, source, probabilities=probabilities, progress=progress):
                if pixels:
                    band = replace(band, pixels=source.read(band.top, 0, band.rows, source.info.width))
                for writer in writers:
                    writer.write(band)
            for writer in writers:
                writer.commit()
        except BaseException:
            for writer in writers:
                writer.discard()
            raise


def _units(units: Callable[[Item], int], item: Item) -> int:
    """An image's share of the progress bar; one that cannot be sized now fails later, in its own turn."""
    try:
        return max(1, units(item))
    except PixelwiseError:
        return 1


def _fails_one_image(error: BaseException) -> bool:
    """A bad input file, or memory short for this image (PyTorch says it with a RuntimeError)."""
    from pixelwise.data.memory import out_of_memory

    return isinstance(error, InputError) or out_of_memory(error)


def _failure_line(item: Item, error: BaseException) -> str:
    from pixelwise.data.memory import memory_error_line, out_of_memory

    if out_of_memory(error):
        return memory_error_line(error, item.path)
    message = str(error)
    return message if str(item.path) in message else f"{item.path}: {message}"


def _say_above(bar: Any, item: Item, quiet: bool) -> Callable[[str], None]:
    """How a note of ``item`` is said: ``note: NAME: message``, one line above the bar (nothing when quiet)."""

    def say(text: str) -> None:
        if not quiet:
            # a note of the data layer names the file already
            named = text if str(item.path) in text else f"{item.path.name}: {text}"
            bar.write(f"note: {named}", file=sys.stderr)

    return say


@contextlib.contextmanager
def _notes(say: Callable[[str], None]) -> Iterator[None]:
    """Python warnings raised inside become one ``say(message)`` each, once per message, as they come."""
    seen: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            say(text)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


class _Manifest:
    """``OUT/.pixelwise-job.jsonl``: the job's settings on the first line, then a ``{"done": name}`` line per
    finished image. Appended to, never rewritten during a run; a torn last line (a killed process) is
    ignored, so at worst one image is done again."""

    def __init__(self, path: Path, settings: dict[str, Any], *, fresh: bool) -> None:
        self.path = path
        self.settings = settings
        # a new record is begun with the first finished image: a job that did nothing leaves nothing
        self.begun = not fresh and self.matches(path, settings)

    def add(self, name: str) -> None:
        if not self.begun:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps({"job": self.settings}, sort_keys=True) + "\n")
            self.begun = True
        with self.path.open("a") as handle:
            handle.write(json.dumps({"done": name}) + "\n")

    @classmethod
    def matches(cls, path: Path, settings: dict[str, Any]) -> bool:
        """Whether the record at ``path`` is of a job with these settings."""
        lines = cls._lines(path)
        return bool(lines) and lines[0] == {"job": json.loads(json.dumps(settings))}

    @classmethod
    def finished(cls, path: Path) -> set[str]:
        """The names the record says are finished."""
        return {str(line["done"]) for line in cls._lines(path)[1:] if "done" in line}

    @staticmethod
    def _lines(path: Path) -> list[dict[str, Any]]:
        try:
            text = path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            raise PixelwiseError(f"{path}: cannot read the job's record ({os.strerror(error.errno or 0)})") from None
        lines = []
        for line in text.splitlines():
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a killed process
            if isinstance(parsed, dict):
                lines.append(parsed)
        return lines
