"""The options several commands share, defined once, so that a flag has one name, one metavar and one rule
in every command.

Use them as parameter defaults::

    @app.command()
    def export(
        checkpoint: Path = typer.Argument(..., help="A best.pt or its run folder."),
        out: Path = out_option("The .onnx file to write.", metavar="FILE"),
        overwrite: bool = overwrite_option(),
        device: str = device_option(),
        threads: int | None = threads_option(),
        quiet: bool = quiet_option(),
    ) -> None:
        set_threads(threads, torch=True)

- ``-o/--out``: where the outputs go (a folder, or a file with ``metavar="FILE"``).
- ``--overwrite``: replace existing outputs.
- ``--threads N``: threads of the numeric libraries (and torch's, for a command that runs a network);
  ``set_threads`` applies it.
- ``-q/--quiet``: no progress output.
- ``--device auto|cpu|cuda|cuda:N``, default ``auto``: checked as it is read, so ``--device tpu`` is one
  line before any work; ``auto`` is resolved by ``pixelwise.device.choose_device``.
- ``switch_option("tta", False, ...)``: an on/off setting as ``--tta/--no-tta``, its default shown as on/off.
- ``settings_option``, ``model_options_option``, ``data_options_option``: the repeatable ``KEY=VALUE``
  flags ``--set``, ``--model-option``, ``--data-option`` (read with ``app.parse_key_values``).
- ``instances_option``, ``no_split_option``, ``min_size_option``, ``coco_option``: ``--instances`` and its
  flags on ``predict`` and ``classical``; ``instance_sink`` turns them into the job's ``instances`` sink.
- ``cluster_option`` / ``workers_option``: ``--cluster ADDRESS`` (a running Dask cluster) or ``--workers N``
  (N worker processes here); ``executor_for`` turns them into the job's executor (``pixelwise.cluster``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pixelwise.device import check_device_name
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    from pixelwise.jobs import Item
    from pixelwise.sinks.objects import InstanceSink

DEVICE_CHOICES = "auto|cpu|cuda|cuda:N"
# instances.DEFAULT_MIN_SIZE, said here so that the help does not import the instances package
DEFAULT_MIN_SIZE = 16


def out_option(help: str, *, default: Any = ..., metavar: str = "DIR") -> Any:
    """``-o/--out DIR``: where the command writes (required unless ``default`` is given)."""
    shown = default is not ... and default is not None
    return typer.Option(default, "--out", "-o", metavar=metavar, help=help, show_default=shown)


def overwrite_option(help: str = "Replace files of the same names already in --out.") -> Any:
    """``--overwrite``: the one word for replacing existing outputs."""
    return typer.Option(False, "--overwrite", help=help)


def threads_option(help: str | None = None, *, default: int | None = None, default_text: str | None = None) -> Any:
    """``--threads N`` (N >= 1); None leaves the libraries their own choice (or what ``default_text`` says)."""
    text = help or "Threads of the numeric libraries (torch, OpenMP, BLAS)."
    shown = default_text or (str(default) if default is not None else "the libraries' choice")
    return typer.Option(
        default,
        "--threads",
        metavar="N",
        callback=check_threads,
        help=f"{text}  [default: {shown}]",
        show_default=False,
    )


def quiet_option(help: str = "No progress output.") -> Any:
    """``-q/--quiet``."""
    return typer.Option(False, "--quiet", "-q", help=help)


def device_option(
    help: str = "Where the network runs; auto: CUDA when torch sees a GPU.", default: str = "auto"
) -> Any:
    """``--device auto|cpu|cuda|cuda:N``, the same rule as ``pixelwise train --device``."""
    return typer.Option(default, "--device", metavar=DEVICE_CHOICES, help=help, callback=check_device)


def check_device(value: str) -> str:
    """A callback, run as the flag is read: ``--device`` must be auto, cpu, cuda or cuda:N."""
    return check_device_name(value)


def check_threads(value: int | None) -> int | None:
    """A callback, run as the flag is read (before any work): ``--threads`` must be 1 or more."""
    if value is not None and value < 1:
        raise PixelwiseError(f"--threads {value}: give 1 or more")
    return value


def switch_option(name: str, default: bool, help: str) -> Any:
    """An on/off setting as ``--NAME/--no-NAME``, its default shown as on or off."""
    shown = "on" if default else "off"
    return typer.Option(default, f"--{name}/--no-{name}", help=f"{help}  [default: {shown}]", show_default=False)


def settings_option(help: str) -> Any:
    """``--set KEY=VALUE``, repeatable."""
    return typer.Option([], "--set", metavar="KEY=VALUE", help=help, show_default=False)


def model_options_option(
    help: str = "An option of the model, e.g. width=32 for unet-small (`pixelwise models` lists them).",
) -> Any:
    """``--model-option KEY=VALUE``, repeatable."""
    return typer.Option([], "--model-option", metavar="KEY=VALUE", help=help, show_default=False)


def data_options_option(
    help: str = "An option of a built-in dataset, e.g. count=500 (`pixelwise datasets export -h`).",
) -> Any:
    """``--data-option KEY=VALUE``, repeatable."""
    return typer.Option([], "--data-option", metavar="KEY=VALUE", help=help, show_default=False)


def set_threads(threads: int | None, *, torch: bool) -> None:
    """Apply ``--threads``: OpenMP and BLAS pools (threadpoolctl), and torch's when the command runs a network.

    None changes nothing. The limit holds for the rest of the process, as a command runs once.
    """
    if threads is None:
        return
    check_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if torch:
        import torch as torch_module

        torch_module.set_num_threads(threads)


def instances_option() -> Any:
    """``--instances``: also find the objects of each image (``sinks.objects``)."""
    return typer.Option(
        False,
        "--instances",
        help="Also find the objects: instances/<name>.tif (32-bit labels) and .geojson (polygons), "
        "instances/objects.csv (one row per object: area, centroid, box, shape, mean intensity) and "
        "instances/objects_summary.csv (count per image and class). Touching objects are split.",
    )


def no_split_option() -> Any:
    """``--no-split``: objects are the plain connected components."""
    return typer.Option(
        False, "--no-split", help="With --instances: plain connected components (touching objects stay one)."
    )


def min_size_option() -> Any:
    """``--min-size N``: objects of fewer pixels are specks."""
    return typer.Option(
        None,
        "--min-size",
        metavar="N",
        help=f"With --instances: drop objects of fewer than N pixels.  [default: {DEFAULT_MIN_SIZE}]",
        show_default=False,
    )


def coco_option() -> Any:
    """``--coco``: the objects as COCO annotations too."""
    return typer.Option(
        False,
        "--coco",
        help="With --instances: also instances/objects.coco.json, the objects as COCO RLE annotations "
        "(CVAT, detectron2). Needs pixelwise[coco].",
    )


def instance_sink(
    *,
    instances: bool,
    no_split: bool,
    min_size: int | None,
    coco: bool,
    out: Path,
    items: Sequence[Item],
    probabilities: bool,
) -> InstanceSink | None:
    """The ``instances`` sink the flags ask for (None without ``--instances``); ``probabilities``: the
    command's network gives them for the split. Its flags without ``--instances`` are one line."""
    if not instances:
        flags = (("--no-split", no_split), ("--min-size", min_size is not None), ("--coco", coco))
        given = [flag for flag, used in flags if used]
        if given:
            raise PixelwiseError(f"{given[0]} is an option of --instances; add --instances")
        return None
    from pixelwise.sinks.objects import InstanceSink

    return InstanceSink(
        out=out,
        split=not no_split,
        min_size=DEFAULT_MIN_SIZE if min_size is None else min_size,
        probabilities=probabilities,
        coco=coco,
        inputs={item.name: item.path for item in items},
    )


def objects_line(sink: InstanceSink, out: Path) -> str:
    """What ``--instances`` wrote, after a job: ``objects: 412 in 12 images, out/instances/objects.csv ...``."""
    folder = out / "instances"
    if sink.joined is None:
        return f"objects: none written (no image finished); see {folder}"
    objects, images = sink.joined
    coco = ", objects.coco.json" if sink.coco else ""
    return (
        f"objects: {objects} in {images} {'image' if images == 1 else 'images'}: {folder / 'objects.csv'} (one row "
        f"each), objects_summary.csv{coco}; a label image and a GeoJSON per image beside them"
    )


def cluster_option() -> Any:
    """``--cluster ADDRESS``: run on a running Dask cluster, through its scheduler."""
    return typer.Option(
        None,
        "--cluster",
        metavar="ADDRESS",
        help="Run on the Dask cluster of this scheduler (tcp://host:8786), one task per image; its workers must "
        "see the inputs and the outputs at the same paths. Needs pixelwise[cluster].",
    )


def workers_option() -> Any:
    """``--workers N``: run on a Dask cluster of N worker processes started on this machine."""
    return typer.Option(
        None,
        "--workers",
        metavar="N",
        callback=check_workers,
        help="Run on N worker processes on this machine (a Dask LocalCluster); --threads is then per worker "
        "(default: the cores over N). Needs pixelwise[cluster].",
    )


def check_workers(value: int | None) -> int | None:
    """A callback, run as the flag is read: ``--workers`` must be 1 or more."""
    if value is not None and value < 1:
        raise PixelwiseError(f"--workers {value}: give 1 or more")
    return value


@contextlib.contextmanager
def executor_for(cluster: str | None, workers: int | None, *, threads: int | None, quiet: bool) -> Iterator[Any]:
    """The executor of ``--cluster`` / ``--workers`` for the block: None without them (the work runs in this
    process), else a ``cluster.DaskExecutor`` (connected first: an unreachable scheduler is one line before
    any work)."""
    if cluster is None and workers is None:
        yield None
        return
    if cluster is not None and workers is not None:
        raise PixelwiseError("--cluster and --workers exclude each other: give the cluster to run on, or N workers")
    from pixelwise.cluster import open_cluster

    with open_cluster(address=cluster, workers=workers, threads=threads, quiet=quiet) as executor:
        yield executor
