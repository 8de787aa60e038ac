"""`pixelwise serve MODEL`: a web page and an HTTP API for a trained model, on this machine's port.

The model is loaded and the port bound before the one-line banner names the URL, the model and its
classes; then uvicorn serves until Ctrl-C. See ``pixelwise.serve.app`` for the endpoints.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import typer

from pixelwise.cli.app import app
from pixelwise.cli.options import device_option, quiet_option, threads_option
from pixelwise.errors import PixelwiseError


def available_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the whole machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@app.command(
    epilog="""Examples:

\b
  pixelwise serve runs/cells/best.pt        # then open http://127.0.0.1:8000
  pixelwise serve model.onnx --host 0.0.0.0 --port 8080 --slots 2"""
)
def serve(
    model: Path = typer.Argument(
        ..., metavar="MODEL", help="A best.pt / last.pt from 'pixelwise train' (or its run folder), or an .onnx file."
    ),
    host: str = typer.Option(
        "127.0.0.1", metavar="ADDRESS", help="Address to listen on; 0.0.0.0 for every network interface."
    ),
    port: int = typer.Option(8000, metavar="N", help="Port to listen on; 0 for any free port."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", metavar="MB", help="Largest upload accepted."),
    max_megapixels: float = typer.Option(
        25.0, "--max-megapixels", metavar="MP", help="Largest image accepted (height × width), in millions of pixels."
    ),
    slots: int = typer.Option(1, "--slots", metavar="N", help="Inferences run at the same time."),
    queue: int = typer.Option(
        4, "--queue", metavar="N", help="Requests that may wait for a slot; more get 503 + Retry-After."
    ),
    threads: int | None = threads_option("Compute threads per slot.", default_text="the cores divided among the slots"),
    tile: int | None = typer.Option(
        None, "--tile", metavar="N", help="Default tile size.  [default: the training tile size]"
    ),
    max_windows: int | None = typer.Option(
        None,
        "--max-windows",
        metavar="N",
        help="A request's budget of tiles × TTA passes; more is refused (422 or 413).  [default: what the largest "
        "image accepted costs at the model's own tiling and TTA]",
        show_default=False,
    ),
    header_timeout: float = typer.Option(
        30.0, "--header-timeout", metavar="S", help="Seconds a client has to send a request's headers."
    ),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", metavar="S", help="Seconds an upload may stall between two reads; then 408."
    ),
    max_connections: int = typer.Option(
        64, "--max-connections", metavar="N", help="Open connections at most; a request beyond them gets 503."
    ),
    device: str = device_option(),
    quiet: bool = quiet_option("No line per request; errors are still logged."),
) -> None:
    """A web page and an HTTP API for a trained model.

    Drop an image on the page to see its mask; programs POST images to /predict.
    """
    try:
        from pixelwise.serve.app import create_app
        from pixelwise.serve.model import backend_name, load_predictor
        from pixelwise.serve.server import listen, serve_forever, url_of
        from pixelwise.serve.settings import Settings
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
        max_windows=max_windows,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_connections=max_connections,
    )
    if slots * threads > cores:
        typer.echo(
            f"note: {slots} slots × {threads} threads = {slots * threads} threads on {cores} cores; "
            "they will wait for each other",
            err=True,
        )
    # the port first: a port in use is said at once, not after loading (or exporting) the model
    sock = listen(host, port)
    with warnings.catch_warnings():
        if quiet:  # the notes of loading (a model exported once for ONNX Runtime) are not shown either
            warnings.simplefilter("ignore")
        predictor = load_predictor(model, device=device, threads=threads, tile_size=tile)
    application = create_app(predictor, settings)
    names = ", ".join(predictor.classes.names)
    print(
        f"pixelwise serve: {url_of(sock)} · model {model} ({backend_name(predictor)}, "
        f"{slots} slot{'s' if slots > 1 else ''} × {threads} thread{'s' if threads > 1 else ''}) · "
        f"classes: {names}",
        flush=True,
    )
    serve_forever(application, sock, access_log=not quiet)
