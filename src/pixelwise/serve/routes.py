"""The page and the endpoints that describe the service: ``/``, ``/healthz``, ``/readyz``, ``/model``.

Each answers HEAD as well as GET (HTTP requires it of every GET resource; load balancers probe with it).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from pixelwise.serve.refusals import error_response
from pixelwise.serve.schema import ErrorBody, ModelInfo, Status
from pixelwise.serve.service import Service, current_service


def add_routes(app: FastAPI) -> None:
    """The page, ``/healthz``, ``/readyz`` and ``/model`` on ``app``, each for GET and HEAD: two operations, as
    FastAPI gives each operation its own id. On the app itself, not through a router, so that a 405 can list
    every method of a path (:func:`pixelwise.serve.refusals.allowed_methods`)."""
    get_and_head(app, "/", index, response_class=HTMLResponse, include_in_schema=False)
    get_and_head(app, "/healthz", healthz, response_model=Status, summary="The process is alive")
    get_and_head(
        app,
        "/readyz",
        readyz,
        response_model=Status,
        summary="The model is loaded and answered its warm-up prediction",
        responses={503: {"model": ErrorBody, "description": "not ready yet, or the warm-up failed"}},
    )
    get_and_head(
        app, "/model", model, response_model=ModelInfo, summary="The model: classes, channels, tiling, backend, limits"
    )


def get_and_head(app: FastAPI, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
    for method in ("GET", "HEAD"):
        app.add_api_route(path, endpoint, methods=[method], **options)


async def index() -> HTMLResponse:
    html, policy = page()
    return HTMLResponse(html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})


async def healthz() -> Status:
    return Status(status="ok")


async def readyz(service: Annotated[Service, Depends(current_service)]) -> Status | JSONResponse:
    if service.not_ready is not None:
        return error_response(503, f"not ready: {service.not_ready}")
    return Status(status="ready")


async def model(service: Annotated[Service, Depends(current_service)]) -> ModelInfo:
    return service.model_info


@functools.cache
def page() -> tuple[str, str]:
    """The page (HTML with its CSS and script inlined) and the Content-Security-Policy that allows only them.

    The policy admits exactly this script and this style by their hashes and lets the page talk to its own
    server only: nothing external can load, so what works in the test works offline.
    """
    files = resources.files("pixelwise.serve") / "static"
    style = (files / "style.css").read_text(encoding="utf-8")
    script = (files / "app.js").read_text(encoding="utf-8")
    html = (files / "index.html").read_text(encoding="utf-8")
    html = html.replace("/*STYLE*/", style).replace("/*SCRIPT*/", script)

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"

    policy = (
        f"default-src 'none'; script-src {digest(script)}; style-src {digest(style)}; "
        "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
    )
    return html, policy
