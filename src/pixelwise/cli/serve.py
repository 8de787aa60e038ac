"""`pixelwise serve MODEL`: a web page and an HTTP API for a trained model, on this machine's port.

The model is loaded and the port bound before the one-line banner names the URL, the model and its
classes; then uvicorn serves until Ctrl-C. See ``pixelwise.serve.app`` for the endpoints.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from pixelwise.cli.app import app
from pixelwise.errors import PixelwiseError


def available_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the whole machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@app.command()
def serve(
    model: Path = typer.Argument(..., help="A best.pt / last.pt from 'pixelwise train', or its run folder."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 for every network interface."),
    port: int = typer.Option(8000, help="Port to listen on; 0 for any free port."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", help="Largest upload accepted, in MB."),
    max_megapixels: float = typer.Option(
        25.0, "--max-megapixels", help="Largest image accepted (height × width), in millions of pixels."
    ),
    slots: int = typer.Option(1, "--slots", help="Inferences run at the same time."),
    queue: int = typer.Option(4, "--queue", help="Requests that may wait for a slot; more get 503 + Retry-After."),
    threads: int | None = typer.Option(
        None, "--threads", help="Compute threads per slot; default: the cores divided among the slots."
    ),
    tile: int | None = typer.Option(None, "--tile", help="Default tile size; default: the training tile size."),
    device: str = typer.Option("auto", "--device", metavar="auto|cpu|cuda|cuda:N", help="Where the model runs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per request; errors are still logged."),
) -> None:
    """Serve a model: a page to drop images on, and POST /predict for programs."""
    try:
        from pixelwise.serve.app import Settings, create_app
        from pixelwise.serve.model import backend_name, load_predictor
        from pixelwise.serve.server import listen, serve_forever, url_of
    except ImportError as error:
        raise PixelwiseError(
            f"pixelwise serve needs FastAPI and uvicorn ({error}); install them with: pip install 'pixelwise[serve]'"
        ) from None

    cores = available_cores()
    if threads is None:
        threads = max(1, cores // max(1, slots))
    settings = Settings(
        model_name=model.name,
        max_upload_mb=max_upload_mb,
        max_megapixels=max_megapixels,
        slots=slots,
        queue=queue,
        threads=threads,
    )
    if slots * threads > cores:
        typer.echo(
            f"note: {slots} slots × {threads} threads = {slots * threads} threads on {cores} cores; "
            "they will wait for each other",
            err=True,
        )
    predictor = load_predictor(model, device=device, threads=threads, tile_size=tile)
    application = create_app(predictor, settings)
    sock = listen(host, port)
    names = ", ".join(predictor.classes.names)
    print(
        f"pixelwise serve: {url_of(sock)} · model {model} ({backend_name(predictor)}, "
        f"{slots} slot{'s' if slots > 1 else ''} × {threads} thread{'s' if threads > 1 else ''}) · "
        f"classes: {names}",
        flush=True,
    )
    serve_forever(application, sock, access_log=not quiet)
