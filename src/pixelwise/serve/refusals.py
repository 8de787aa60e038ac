"""Every refusal of the service as a JSON body ``{"error": "one line"}``, and the statuses the schema lists.

FastAPI's and Starlette's own answers (404, 405, a body that is no form, a validation error) go through
the handlers here, so that a client meets one shape of error whatever refused it, and never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from pixelwise.serve.schema import ErrorBody

log = logging.getLogger("pixelwise.serve")

HOW_TO_SEND = "send the image as the form field 'image' (curl -F image=@photo.png)"

# what /predict may answer besides 200, as the schema documents it
PREDICT_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "the body is not a well-formed multipart form, or it holds more than one file"),
        (408, "the upload stalled for longer than the body timeout"),
        (413, "the upload is over the byte limit, or the image over the pixel cap"),
        (415, "the file is empty, or not an image that can be read (PNG, JPEG, TIFF, BMP)"),
        (
            422,
            "no file in the 'image' field, a parameter out of range, tiling options over the request budget, "
            "or an image the model cannot take",
        ),
        (503, "every slot is busy and the queue is full, or too many connections; retry after Retry-After"),
    )
}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Refusal(Exception):
    """A request the service answers with ``status`` and one line (raised in the worker thread too)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's and Starlette's HTTP errors in our words."""
    assert isinstance(error, HTTPException)
    if error.status_code == 413:
        max_upload_mb = request.app.state.service.settings.max_upload_mb
        message = f"the upload is over the limit of {max_upload_mb:g} MB; send a smaller file"
    elif error.status_code == 404:
        message = f"no such page: {request.url.path}; the API is described at /openapi.json"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
        # Starlette's Allow names the methods of the first route of the path only (HEAD or GET, not both)
        headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return _logged(request, error_response(405, message, headers=headers), message)
    elif error.status_code == 400:
        # FastAPI's line for a body that is no form says nothing a client can act on; Starlette's (too many
        # files or fields) does
        detail = str(error.detail)
        reason = "not a well-formed multipart form" if detail == "There was an error parsing the body" else detail
        message = f"the body could not be read as a form ({reason.rstrip('.')}); {HOW_TO_SEND}"
    else:
        message = str(error.detail)
    return _logged(request, error_response(error.status_code, message, headers=error.headers), message)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """A bug outside ``/predict``'s own guard: JSON like every other answer (uvicorn logs the traceback)."""
    return error_response(500, "the server failed on this request; the server's log says why")


def _logged(request: Request, response: JSONResponse, message: str) -> JSONResponse:
    if request.url.path == "/predict":
        log.warning("%s /predict %d: %s", request.method, response.status_code, message)
    return response


def allowed_methods(request: Request) -> list[str]:
    """Every method that some route of ``request``'s path takes, in a fixed order."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": ""})
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """A parameter or field out of place: 422 with one line naming each."""
    assert isinstance(error, RequestValidationError)
    message = "; ".join(dict.fromkeys(validation_message(item) for item in error.errors()))
    log.warning("%s %s 422: %s", request.method, request.url.path, message)
    return error_response(422, message)


def validation_message(item: Any) -> str:
    """One of FastAPI's validation errors as words: which parameter, what is wrong."""
    where, *path = item.get("loc", ("", ""))
    field = ".".join(str(part) for part in path) or str(where)
    if where == "body" and item.get("type") == "missing":
        return f"no file in the multipart field '{field}'; {HOW_TO_SEND}"
    if where == "body" and field == "image":
        # a text field of that name (curl -F image=photo.png, without the @): FastAPI's message names a class
        return f"the form field 'image' holds text, not a file; {HOW_TO_SEND} — the @ sends the file"
    kind = {"query": "query parameter", "body": "form field"}.get(str(where), str(where))
    return f"{kind} '{field}': {item.get('msg', 'invalid')}"


def one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__
