"""Run the service with uvicorn: on a socket bound first (so the banner can name the real port, 0 included),
in the foreground for ``pixelwise serve`` or in a thread for tests and benchmarks; always with the guards of
``serve.connections`` (header deadline, connection cap) set from the app's settings."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import uvicorn

from pixelwise.errors import PixelwiseError
from pixelwise.serve.connections import guarded_protocol
from pixelwise.serve.settings import Settings

log = logging.getLogger("pixelwise.serve")


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port); a PixelwiseError when it cannot be had."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise PixelwiseError(f"cannot listen on {host}:{port} ({error.strerror or error}); check --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise PixelwiseError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); pick another --port or --host"
        ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def log_config(*, access_log: bool) -> dict[str, Any]:
    """Logging for the server: one line per event, uvicorn's start-up chatter left out (the banner says it)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(message)s", "datefmt": "%H:%M:%S"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.access": {
                "handlers": ["stderr"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
            "pixelwise.serve": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


# seconds an idle keep-alive connection stays open (uvicorn's default)
KEEP_ALIVE = 5


def _config(app: Any, *, access_log: bool) -> uvicorn.Config:
    # the app's own settings (create_app keeps them) hold the connection limits; another ASGI app gets defaults
    service = getattr(getattr(app, "state", None), "service", None)
    settings = service.settings if service is not None else Settings()
    return uvicorn.Config(
        app,
        http=guarded_protocol(settings, keep_alive=KEEP_ALIVE),
        log_config=log_config(access_log=access_log),
        access_log=access_log,
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=5,
        # the proxy headers of a client that is not behind our own proxy are lies
        proxy_headers=False,
    )


def serve_forever(app: Any, sock: socket.socket, *, access_log: bool = True) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C (or SIGTERM)."""
    warnings.showwarning = _log_warning
    uvicorn.Server(_config(app, access_log=access_log)).run(sockets=[sock])


def _log_warning(message: Warning | str, *_: object, **__: object) -> None:
    """A warning (e.g. a grey image given to an RGB model) as one log line, without the line of code."""
    log.warning("%s", message)


@contextlib.contextmanager
def running_server(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False, timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` from a thread on a free port; yields its URL once it answers, stops it on exit."""
    sock = listen(host, port)
    server = uvicorn.Server(_config(app, access_log=access_log))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
