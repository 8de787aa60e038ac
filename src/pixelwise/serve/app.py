"""The web service: a page to try a model in the browser and an HTTP API for programs (FastAPI).

=======================  ====================================================================================
``GET /``                the page: drop an image, see the overlay, the legend and each class's area
``POST /predict``        multipart field ``image`` -> palette PNG mask (``?format=overlay``: RGB PNG overlay,
                         ``?format=json``: classes, pixel counts and the mask as base64 PNG); optional
                         ``tile``, ``overlap``, ``tta`` within the limits ``/model`` lists
``GET /model``           classes (names, colours), input channels, tiling, backend and the limits
``GET /healthz``         the process is alive
``GET /readyz``          the model answered its warm-up prediction: send work
``GET /openapi.json``    the API's schema (the Swagger page at ``/docs`` needs a CDN, so it is switched off)
=======================  ====================================================================================

Every refusal is a JSON body ``{"error": "one line naming the problem"}``: 413 for an upload over the byte
limit (refused from its Content-Length, or as soon as the bytes read pass the limit, never after reading
it all) or an image over the pixel cap (from its header, before decoding); 415 for anything that is not an
image; 422 for a missing field or a value out of range, or an image the model cannot take; 503 with
Retry-After when the slots and the queue are full. No traceback reaches a client; each failure is one
line in the log.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import anyio
import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from pixelwise.data.decode import ImageTooLargeError
from pixelwise.data.io import decode_image, encode_mask, encode_overlay
from pixelwise.errors import PixelwiseError
from pixelwise.serve.model import ServedPredictor, backend_name, with_options
from pixelwise.serve.schema import ClassArea, ClassInfo, ErrorBody, Limits, ModelInfo, Prediction, Status, Timing
from pixelwise.serve.slots import InferenceSlots, ServerBusy

log = logging.getLogger("pixelwise.serve")

# per-request tiling within these bounds: a tile's activations must fit in memory, and overlap o costs
# 1 / (1 - o)² forward passes per pixel (16× at 0.75)
MIN_TILE, MAX_TILE = 32, 1024
MAX_OVERLAP = 0.75
# the warm-up prediction that makes the service ready: small, but one real pass through the network
WARM_UP_SIZE = 64

Format = Literal["mask", "overlay", "json"]


@dataclass(frozen=True)
class Settings:
    """How the service runs. ``model_name`` is what the page and ``/model`` call the model (its file name)."""

    model_name: str = "model"
    max_upload_mb: float = 50.0
    max_megapixels: float = 25.0
    slots: int = 1
    queue: int = 4
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_megapixels"):
            if not getattr(self, name) > 0:
                raise PixelwiseError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name, low in (("slots", 1), ("queue", 0), ("threads", 1)):
            if getattr(self, name) < low:
                raise PixelwiseError(f"--{name} must be at least {low}, got {getattr(self, name)}")

    @property
    def max_upload_bytes(self) -> int:
        return round(self.max_upload_mb * 1024 * 1024)

    @property
    def max_pixels(self) -> int:
        return round(self.max_megapixels * 1_000_000)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Refusal(Exception):
    """A request the service answers with ``status`` and one line; raised in the worker thread."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _State:
    """What the running service knows: its slots (made in the lifespan) and why it is not ready, if it is not."""

    slots: InferenceSlots | None = None
    not_ready: str | None = "warming up"


@dataclass
class _Outcome:
    body: bytes | Prediction
    timing: Timing


def create_app(predictor: ServedPredictor, settings: Settings | None = None) -> FastAPI:
    """The service for ``predictor`` (see the module docstring). Run it with uvicorn (``serve.server``)."""
    settings = settings or Settings()
    classes = predictor.classes
    class_infos = [
        ClassInfo(index=index, name=name, color=color)
        for index, (name, color) in enumerate(zip(classes.names, classes.colors, strict=True))
    ]
    model_info = ModelInfo(
        name=settings.model_name,
        backend=backend_name(predictor),
        classes=class_infos,
        in_channels=predictor.in_channels,
        tile_size=predictor.tile_size,
        overlap=predictor.overlap,
        tta=predictor.tta,
        slots=settings.slots,
        queue=settings.queue,
        threads=settings.threads,
        limits=Limits(
            max_upload_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            tile=(MIN_TILE, MAX_TILE),
            overlap=(0.0, MAX_OVERLAP),
        ),
    )
    page, page_policy = _page()
    state = _State()

    def warm_up() -> None:
        predictor.predict_labels(np.zeros((WARM_UP_SIZE, WARM_UP_SIZE, predictor.in_channels), np.float32))

    async def run_warm_up(slots: InferenceSlots) -> None:
        try:
            await slots.run(warm_up)
        except Exception as error:
            state.not_ready = f"the model failed its warm-up prediction ({_one_line(error)})"
            log.error(state.not_ready)
        else:
            state.not_ready = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the slots belong to the running event loop: made here, not when the app is built
        state.slots = slots = InferenceSlots(settings.slots, settings.queue)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_warm_up, slots)
            yield
            tasks.cancel_scope.cancel()

    app = FastAPI(
        title="pixelwise",
        summary=f"Semantic segmentation with {settings.model_name}",
        version=_version(),
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: useless offline
        redoc_url=None,
        lifespan=lifespan,
    )

    app.add_middleware(_DeclaredSizeLimit, path="/predict", max_bytes=settings.max_upload_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 413:
            message = f"the upload is over the limit of {settings.max_upload_mb:g} MB; send a smaller file"
        elif error.status_code == 404:
            message = f"no such page: {request.url.path}; the API is described at /openapi.json"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
        else:
            message = str(error.detail)
        if request.url.path == "/predict":
            log.warning("%s /predict %d: %s", request.method, error.status_code, message)
        return _error(error.status_code, message, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        message = "; ".join(_validation_message(item) for item in error.errors())
        log.warning("%s %s 422: %s", request.method, request.url.path, message)
        return _error(422, message)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": page_policy, "Cache-Control": "no-cache"})

    @app.get("/healthz", response_model=Status, summary="The process is alive")
    async def healthz() -> Status:
        return Status(status="ok")

    @app.get(
        "/readyz",
        response_model=Status,
        summary="The model is loaded and answered its warm-up prediction",
        responses={503: {"model": ErrorBody, "description": "not ready yet, or the warm-up failed"}},
    )
    async def readyz() -> Status | JSONResponse:
        if state.not_ready is not None:
            return _error(503, f"not ready: {state.not_ready}")
        return Status(status="ready")

    @app.get("/model", response_model=ModelInfo, summary="The model: classes, channels, tiling, backend, limits")
    async def model() -> ModelInfo:
        return model_info

    refusals: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": description}
        for status, description in (
            (413, "the upload is over the byte limit, or the image over the pixel cap"),
            (415, "the file is not an image that can be read (PNG, JPEG, TIFF, BMP)"),
            (422, "no 'image' field, a parameter out of range, or an image the model cannot take"),
            (503, "every slot is busy and the queue is full; retry after the Retry-After header's seconds"),
        )
    }

    @app.post(
        "/predict",
        summary="Segment an image",
        description="The mask of the uploaded image as a palette PNG of the image's size (pixel value = class "
        "index, palette = class colours); an RGB overlay PNG with format=overlay; with format=json the "
        "classes, each one's area and the mask (and with overlay=true the overlay) as base64 PNG.",
        response_model=Prediction,
        responses={200: {"content": {"image/png": {}}}, **refusals},
        max_body_size=settings.max_upload_bytes,
        form_limits={"max_files": 1, "max_fields": 8},
    )
    async def predict(
        image: Annotated[UploadFile, File(description="The image file: PNG, JPEG, TIFF or BMP.")],
        format: Annotated[Format, Query(description="mask (PNG), overlay (PNG) or json.")] = "mask",
        tile: Annotated[
            int | None, Query(ge=MIN_TILE, le=MAX_TILE, description="Tile size; default: the model's.")
        ] = None,
        overlap: Annotated[
            float | None, Query(ge=0.0, le=MAX_OVERLAP, description="Tile overlap; default: the model's.")
        ] = None,
        tta: Annotated[bool | None, Query(description="Average over flips (4× the time).")] = None,
        overlay: Annotated[bool, Query(description="With format=json: also the overlay PNG.")] = False,
    ) -> Response:
        name = _display_name(image.filename)
        data = await image.read()
        variant = with_options(predictor, tile_size=tile, overlap=overlap, tta=tta)
        try:
            assert state.slots is not None, "the app's lifespan did not run"
            outcome, queued = await state.slots.run(_segment, variant, data, name, format, overlay, settings.max_pixels)
        except ServerBusy as busy:
            log.warning("POST /predict 503: %s", busy)
            return _error(503, str(busy), headers={"Retry-After": str(busy.retry_after)})
        except _Refusal as refusal:
            log.warning("POST /predict %d: %s", refusal.status, refusal.message)
            return _error(refusal.status, refusal.message)
        except Exception as error:  # a bug or a failing backend: the client learns that much, the log the rest
            log.error("POST /predict 500: %s: %s", name, _one_line(error))
            return _error(500, "the prediction failed inside the server; the server's log says why")
        outcome.timing.queued = round(queued, 4)
        timing = {"Server-Timing": ", ".join(f"{key};dur={1000 * value:.1f}" for key, value in outcome.timing)}
        if isinstance(outcome.body, Prediction):
            outcome.body.seconds = outcome.timing
            return JSONResponse(outcome.body.model_dump(), headers=timing)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit(".", 1)[0])[:80] or "image"
        headers = {"Content-Disposition": f'inline; filename="{stem}_{format}.png"', **timing}
        return Response(outcome.body, media_type="image/png", headers=headers)

    return app


class _DeclaredSizeLimit:
    """413 in JSON for a request to ``path`` whose Content-Length is over ``max_bytes``, before its body is read.

    The route's own limit (FastAPI's ``max_body_size``) counts the bytes of a body sent without a length and
    stops reading past the limit; for a declared length it would answer in plain text instead of JSON.
    """

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                message = (
                    f"the upload is {int(declared) / 1048576:.1f} MB, over the limit of "
                    f"{self.max_bytes / 1048576:g} MB; send a smaller file"
                )
                log.warning("%s %s 413: %s", scope["method"], self.path, message)
                await _error(413, message, headers={"Connection": "close"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _segment(
    predictor: ServedPredictor, data: bytes, name: str, format: Format, with_overlay: bool, max_pixels: int
) -> _Outcome:
    """Decode, predict and encode one upload (in a worker thread); refusals as :class:`_Refusal`."""
    started = time.perf_counter()
    try:
        image = decode_image(data, name, max_pixels=max_pixels)
    except ImageTooLargeError as error:
        raise _Refusal(413, str(error)) from None
    except PixelwiseError as error:
        raise _Refusal(415, str(error)) from None
    decoded = time.perf_counter()
    try:
        labels = predictor.predict_labels(image)
    except PixelwiseError as error:  # e.g. an RGB image for a model of two channels
        raise _Refusal(422, f"{name}: {error}") from None
    predicted = time.perf_counter()
    classes = predictor.classes
    if format == "overlay":
        body: bytes | Prediction = encode_overlay(image, labels, classes)
    elif format == "mask":
        body = encode_mask(labels, classes)
    else:
        height, width = labels.shape
        counts = np.bincount(labels.ravel(), minlength=classes.num_classes)
        body = Prediction(
            width=width,
            height=height,
            classes=[
                ClassArea(
                    index=index,
                    name=class_name,
                    color=color,
                    pixels=int(counts[index]),
                    percent=round(100 * int(counts[index]) / labels.size, 4),
                )
                for index, (class_name, color) in enumerate(zip(classes.names, classes.colors, strict=True))
            ],
            mask_png=base64.b64encode(encode_mask(labels, classes)).decode("ascii"),
            overlay_png=base64.b64encode(encode_overlay(image, labels, classes)).decode("ascii")
            if with_overlay
            else None,
            tile_size=predictor.tile_size,
            overlap=predictor.overlap,
            tta=predictor.tta,
            seconds=Timing(queued=0.0, decode=0.0, predict=0.0, encode=0.0),  # known once encoded
        )
    encoded = time.perf_counter()
    timing = Timing(
        queued=0.0,
        decode=round(decoded - started, 4),
        predict=round(predicted - decoded, 4),
        encode=round(encoded - predicted, 4),
    )
    return _Outcome(body, timing)


def _validation_message(item: Any) -> str:
    """One of FastAPI's validation errors as words: which parameter, what is wrong."""
    where, *path = item.get("loc", ("", ""))
    field = ".".join(str(part) for part in path) or str(where)
    if where == "body" and item.get("type") == "missing":
        return f"no file in the multipart field '{field}'; send the image as the form field '{field}' (curl -F {field}=@photo.png)"
    kind = {"query": "query parameter", "body": "form field"}.get(str(where), str(where))
    return f"{kind} '{field}': {item.get('msg', 'invalid')}"


def _display_name(filename: str | None) -> str:
    """The upload's file name for messages: no folders, no control characters, not endless."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable())[:120]
    return name or "upload"


def _one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


def _version() -> str:
    from pixelwise import __version__

    return __version__


def _page() -> tuple[str, str]:
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
