"""`pixelwise compare` (every method on one dataset, clean and with noise, into a report) and `pixelwise demo`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pixelwise.classical import list_methods, oracle_name
from pixelwise.cli.app import app, parse_key_values
from pixelwise.cli.options import (
    data_options_option,
    device_option,
    model_options_option,
    out_option,
    overwrite_option,
    quiet_option,
    set_threads,
    settings_option,
    switch_option,
    threads_option,
)
from pixelwise.cli.train import given_settings
from pixelwise.comparison.methods import NETWORK_METHODS
from pixelwise.errors import PixelwiseError

if TYPE_CHECKING:
    from pixelwise.report.results import ComparisonResults

# The demo: the `fashion` scenes (1-4 Fashion-MNIST items on a black canvas, 11 classes). Every item is bright
# on black, so thresholds, edges and clustering find *where* the objects are (their oracle bounds are high) but
# cannot tell a shirt from a sneaker (their honest mIoU stays low), while a small U-Net learns the shapes.
# Budget, measured on two shared cores (one thread, CPU seconds): CNN 2 epochs of 4,000 scenes 140 s,
# adversarial 390 s (the discriminator costs 1.7x the segmenter), classical methods and oracles on 150 test
# images at 6 noise levels about 130 s; 48 px canvases instead of 64 take 0.56x the time and, being denser,
# train no worse (val mIoU 0.30 vs 0.27 after 6,000-8,000 scenes). End to end: 10 min 35 s on two cores shared
# with other jobs (CNN 142 s, adversarial 387 s); test mIoU CNN 0.30, adversarial 0.29, classical 0.10-0.13,
# their oracle bounds 0.42-0.78.
DEMO_DATASET = "fashion"
DEMO_DATASET_OPTIONS: dict[str, Any] = {"size": 48, "count": 4000}
# the adversarial arm's discriminator at half width (32 base channels): issue 14's discriminator keeps a 12×12
# map on the 48² crops, and at full width it cost 423 ms of CPU per iteration against the segmenter's 71 (the
# demo took 14.5 minutes); at half width 123 ms. The experiment in docs/results.md keeps the default 64.
DEMO_DISCRIMINATOR = {"discriminator_base_channels": 32}
DEMO_TRAIN_OPTIONS: dict[str, Any] = {"epochs": 2, "lr": 0.004, "crop_size": 48, "tile_size": 48, **DEMO_DISCRIMINATOR}
DEMO_TEST_LIMIT = 150
DEMO_CLASSICAL_FIT_IMAGES = 300
# Without the Fashion-MNIST files the demo runs on the procedural `shapes` (discs, squares and triangles of equal
# area and random grey levels: thresholds find them, only the outline names them) with a like budget.
FALLBACK_DATASET = "shapes"
FALLBACK_DATASET_OPTIONS: dict[str, Any] = {"size": 64, "count": 2000}
FALLBACK_TRAIN_OPTIONS: dict[str, Any] = {
    "epochs": 2,
    "lr": 0.004,
    "crop_size": 64,
    "tile_size": 64,
    **DEMO_DISCRIMINATOR,
}
# One torch thread: on two cores with anything else running, two OpenMP threads made a training step 4-12x
# slower than one (their barriers wait for a core that is busy); alone on the machine one thread costs little
# at these image sizes. `--threads 2` for an idle machine.
DEMO_THREADS = 1
DEMO_SIGMAS = "0,0.05,0.1,0.2"
DEMO_SALT_PEPPER = "0.05,0.2"


def _numbers(text: str, flag: str, *, maximum: float) -> list[float]:
    """``"0,0.05,0.1"`` -> [0.0, 0.05, 0.1]; each must lie in [0, maximum]."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise PixelwiseError(f"{flag} {text!r}: expected numbers separated by commas, e.g. 0,0.05,0.1") from None
    for part, value in zip(parts, values, strict=True):
        if not 0 <= value <= maximum:
            raise PixelwiseError(f"{flag} {part}: give levels from 0 to {maximum:g} (0 is the clean image)")
    return values


def run_compare(
    data: str,
    *,
    out: Path,
    methods: list[str] | None,
    oracle: bool,
    train_options: dict[str, Any],
    dataset_options: dict[str, Any],
    sigmas: str,
    salt_pepper: str,
    seed: int,
    test_limit: int | None,
    examples: int,
    classical_fit_images: int | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> ComparisonResults:
    """The shared body of `compare` and `demo`: build the sweep, compare, print the table and the paths."""
    from pixelwise.comparison import compare, default_method_names
    from pixelwise.noise import noise_sweep

    chosen = list(methods) if methods else default_method_names()
    if oracle:
        known = set(list_methods())
        chosen += [oracle_name(name) for name in chosen if name in known and oracle_name(name) not in chosen]
    levels = noise_sweep(
        sigmas=_numbers(sigmas, "--sigmas", maximum=10), salt_pepper=_numbers(salt_pepper, "--salt-pepper", maximum=1)
    )
    results = compare(
        data,
        methods=chosen,
        out_dir=out,
        noise=levels,
        train_options=train_options,
        dataset_options=dataset_options,
        seed=seed,
        test_limit=test_limit,
        num_examples=examples,
        classical_fit_images=classical_fit_images,
        progress=not quiet,
        log=None if quiet else lambda message: typer.echo(message, err=True),
        overwrite=overwrite,
    )
    _print_table(results)
    typer.echo(f"report: {(out / 'report.html').resolve()}")
    typer.echo(f"        {(out / 'report.md').resolve()} and results.json beside it")
    return results


def _print_table(results: ComparisonResults) -> None:
    from pixelwise.report.content import degenerate_notes, honest_methods, oracle_methods, table_name

    def cell(value: float) -> str:
        return "     -" if math.isnan(value) else f"{value:6.3f}"

    rows = honest_methods(results) + oracle_methods(results)
    width = max(12, *(len(table_name(method)) for method in rows))
    typer.echo(
        f"{'method':<{width}}  {'family':<11}  {'mIoU':>6}  {'Dice':>6}  {'pixel':>6}  {'bF1':>6}  {'ms/img':>8}"
    )
    for method in rows:
        metrics = method.metrics
        typer.echo(
            f"{table_name(method):<{width}}  {method.family:<11}  {cell(metrics.miou)}  "
            f"{cell(metrics.mean_dice)}  {cell(metrics.pixel_accuracy)}  {cell(metrics.boundary_f1)}  "
            f"{method.ms_per_image:8.2f}"
        )
    for note in degenerate_notes(rows):
        typer.echo(note)


@app.command(
    "compare",
    epilog="""Examples:

\b
  pixelwise compare nuclei -o report/
  pixelwise compare data/cells -o report/ -m otsu,kmeans,cnn --oracle
  pixelwise compare shapes -o report/ -m cnn --epochs 5 --set lr=0.004
  pixelwise compare nuclei -o report/ -m otsu,cnn,adversarial --time 10m""",
)
def compare_command(
    data: str = typer.Argument(
        ...,
        metavar="DATA",
        help="Dataset folder or built-in name: its train/ val/ test/ folders, or the seeded (--seed) 70/15/15 split "
        "of a flat images/ + masks/ folder.",
    ),
    out: Path = out_option("Report folder: report.html, report.md, results.json, models."),
    methods: str = typer.Option(
        "",
        "--methods",
        "-m",
        metavar="NAME,NAME,...",
        show_default=False,
        help=f"Comma-separated methods: a classical method ({', '.join(list_methods())}), its oracle bound "
        f"{oracle_name('NAME')}, or a network ({', '.join(NETWORK_METHODS)}).  [default: every classical method, "
        "cnn and adversarial]",
    ),
    oracle: bool = switch_option(
        "oracle", False, "Also score each chosen classical method with the oracle labeler (marked 'oracle')."
    ),
    epochs: int | None = typer.Option(None, "--epochs", metavar="N", help="Training epochs of each CNN."),
    time_budget: str | None = typer.Option(
        None, "--time", metavar="DURATION", help="Training time of the CNNs together (90s, 10m, 2h), split evenly."
    ),
    model: str | None = typer.Option(
        None, "--model", metavar="NAME", help="Network of the CNN methods (`pixelwise models` lists them)."
    ),
    model_option: list[str] = model_options_option(),
    config: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="A TrainConfig YAML file for the CNN methods."
    ),
    train_set: list[str] = settings_option(
        "Any training setting of the CNNs, e.g. lr=0.004 (`pixelwise train -h` lists them)."
    ),
    dataset_option: list[str] = data_options_option(),
    sigmas: str = typer.Option(
        "0,0.05,0.1,0.2", "--sigmas", metavar="F,F,...", help="Gaussian noise σ levels (fraction of [0, 1])."
    ),
    salt_pepper: str = typer.Option(
        "0.05,0.2", "--salt-pepper", metavar="F,F,...", help="Salt-and-pepper fractions ('' for none)."
    ),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of the noise, the split and the training."),
    test_limit: int | None = typer.Option(
        None, "--test-limit", metavar="N", help="Score only the first N test images.  [default: all]"
    ),
    examples: int = typer.Option(3, "--examples", metavar="N", help="Test images shown in the qualitative grid."),
    classical_fit_images: int | None = typer.Option(
        None,
        "--classical-fit-images",
        metavar="N",
        help="Fit the classical labelers on N training images spread over the split.  [default: all]",
    ),
    device: str = device_option("Where the CNNs train; auto: CUDA when torch sees a GPU."),
    threads: int | None = threads_option(),
    quiet: bool = quiet_option("No progress bars and no log lines; the table and the report paths only."),
    overwrite: bool = overwrite_option("Replace the earlier report in --out, once the new run has succeeded."),
) -> None:
    """Compare every method on one dataset, clean and under noise.

    Classical, CNN and adversarial segmentation on the same test split; a report (HTML and Markdown) with
    the scores, noise curves and examples.
    """
    set_threads(threads, torch=True)
    train_options = given_settings(
        config,
        train_set,
        model_option,
        {"epochs": epochs, "model": model, "device": None if device == "auto" else device},
    )
    chosen = [name.strip() for name in methods.split(",") if name.strip()] or None
    if time_budget is not None:
        train_options["time"] = _time_per_network(time_budget, chosen)
    run_compare(
        data,
        out=out,
        methods=chosen,
        oracle=oracle,
        train_options=train_options,
        dataset_options=parse_key_values(dataset_option, "--data-option"),
        sigmas=sigmas,
        salt_pepper=salt_pepper,
        seed=seed,
        test_limit=test_limit,
        examples=examples,
        classical_fit_images=classical_fit_images,
        quiet=quiet,
        overwrite=overwrite,
    )


def _time_per_network(budget: str, methods: list[str] | None) -> str:
    """Each CNN method's share of ``--time``: the budget split evenly over the networks among ``methods``."""
    from pixelwise.comparison import default_method_names
    from pixelwise.train.budget import parse_duration

    seconds = parse_duration(budget)
    networks = [name for name in methods or default_method_names() if name in NETWORK_METHODS]
    if not networks:
        raise PixelwiseError(f"--time {budget}: no network among the methods; --time budgets the CNNs' training")
    return f"{seconds / len(networks):g}s"


@app.command(
    "demo",
    epilog="""Examples:

\b
  pixelwise demo
  pixelwise demo -o /tmp/demo --threads 4 --no-oracle""",
)
def demo_command(
    out: Path = out_option("Report folder.", default=Path("demo-report")),
    oracle: bool = switch_option("oracle", True, "Include the oracle bounds (marked 'oracle')."),
    device: str = device_option("Where the CNNs train; auto: CUDA when torch sees a GPU."),
    threads: int = threads_option(
        "Threads of torch and the numeric libraries; 1 stays fast when other work shares two cores.",
        default=DEMO_THREADS,
    ),
    quiet: bool = quiet_option("No progress bars and no log lines; the table and the report paths only."),
    overwrite: bool = overwrite_option("Replace an earlier demo report in --out, once the new run has succeeded."),
) -> None:
    """Run compare on built-in scenes, in about 10 minutes.

    Every classical method, a CNN and the CNN trained adversarially, on the built-in fashion scenes (the
    shapes scenes without the Fashion-MNIST files), clean and with noise.
    """
    from pixelwise.data.builtin.fashion import fashion_source

    set_threads(threads, torch=True)
    dataset, dataset_options, train_options = DEMO_DATASET, DEMO_DATASET_OPTIONS, DEMO_TRAIN_OPTIONS
    try:
        fashion_source()
    except PixelwiseError as error:
        typer.echo(f"note: {error}", err=True)
        typer.echo(f"note: running the demo on the built-in '{FALLBACK_DATASET}' scenes instead", err=True)
        dataset, dataset_options, train_options = FALLBACK_DATASET, FALLBACK_DATASET_OPTIONS, FALLBACK_TRAIN_OPTIONS
    typer.echo(
        f"pixelwise demo: every classical method, a CNN and the CNN trained adversarially on the built-in "
        f"'{dataset}' scenes, clean and with noise; the report goes to {out}/",
        err=True,
    )
    results = run_compare(
        dataset,
        out=out,
        methods=None,
        oracle=oracle,
        train_options={**train_options, **({} if device == "auto" else {"device": device})},
        dataset_options=dict(dataset_options),
        sigmas=DEMO_SIGMAS,
        salt_pepper=DEMO_SALT_PEPPER,
        seed=0,
        test_limit=DEMO_TEST_LIMIT,
        examples=3,
        classical_fit_images=DEMO_CLASSICAL_FIT_IMAGES,
        quiet=quiet,
        overwrite=overwrite,
    )
    from pixelwise.report.demo_table import demo_table

    # the README's table is this one, from this run's results.json (kept as docs/demo-results.json)
    typer.echo("\nthe README's table:\n" + demo_table(results))
