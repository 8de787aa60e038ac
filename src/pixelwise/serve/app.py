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

Every GET answers HEAD too. Every refusal is a JSON body ``{"error": "one line naming the problem"}``: 400
for a body that is not a multipart form; 408 for an upload that stalls longer than the body timeout; 413
for an upload over the byte limit (refused from its Content-Length, or as soon as the bytes read pass the
limit, never after reading it all), an image over the pixel cap (from its header, before decoding) or one
whose prediction would run more tiles × TTA passes than the request budget; 415 for anything that is not an
image (an empty file included); 422 for a missing field or a value out of range, tiling options over the
budget, or an image the model cannot take; 503 with Retry-After when the slots and the queue are full (or
the connections). No traceback reaches a client; each failure is one line in the log.

The parts: ``routes`` (the page and the endpoints that describe the service), ``predict`` (``/predict``),
``refusals`` (the JSON errors), ``guards`` and ``connections`` (stalled clients, sizes, connection cap),
``slots`` (the inference slots and their queue), ``service`` (what the endpoints share).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import numpy as np
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from pixelwise.serve.budget import request_cost
from pixelwise.serve.guards import BodyTimeout, DeclaredSizeLimit
from pixelwise.serve.model import ServedPredictor
from pixelwise.serve.predict import add_predict_route
from pixelwise.serve.refusals import http_error, internal_error, one_line, validation_error
from pixelwise.serve.routes import add_routes
from pixelwise.serve.service import Service
from pixelwise.serve.settings import Settings
from pixelwise.serve.slots import InferenceSlots, Job

log = logging.getLogger("pixelwise.serve")

# the warm-up prediction that makes the service ready: small, but one real pass through the network
WARM_UP_SIZE = 64

__all__ = ["Settings", "create_app"]


def create_app(predictor: ServedPredictor, settings: Settings | None = None) -> FastAPI:
    """The service for ``predictor`` (see the module docstring). Run it with uvicorn (``serve.server``)."""
    settings = settings or Settings()
    service = Service.of(predictor, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the slots belong to the running event loop: made here, not when the app is built
        service.slots = InferenceSlots(settings.slots, settings.queue)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(warm_up, service)
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
    app.state.service = service
    add_routes(app)
    add_predict_route(app, settings)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)  # Starlette's would be plain text
    # the last one added runs first: the declared size is refused before any read is timed
    app.add_middleware(BodyTimeout, seconds=settings.body_timeout)
    app.add_middleware(DeclaredSizeLimit, path="/predict", max_bytes=settings.max_upload_bytes)
    return app


async def warm_up(service: Service) -> None:
    """One small prediction through a slot (it also measures the pace that Retry-After is counted in); the
    service is ready once it answered."""
    predictor, slots = service.predictor, service.slots
    assert slots is not None
    image = np.zeros((WARM_UP_SIZE, WARM_UP_SIZE, predictor.in_channels), np.float32)
    cost = request_cost(
        WARM_UP_SIZE, WARM_UP_SIZE, tile=predictor.tile_size, overlap=predictor.overlap, tta=predictor.tta
    )
    job = Job(cost.total, cost.windows)
    try:
        await slots.run(job, predictor.predict_labels, image)
    except Exception as error:
        service.not_ready = f"the model failed its warm-up prediction ({one_line(error)})"
        log.error(service.not_ready)
    else:
        service.not_ready = None


def _version() -> str:
    from pixelwise import __version__

    return __version__
