"""``POST /predict``: an upload in, its mask, overlay or JSON out; bounded in cost, stopped when its client goes.

The order of the work: the upload is read (its byte limit is the route's); its header gives the image's
size, and so the request's cost in tiles × TTA passes, refused over the budget before it takes a slot;
then in a slot (a worker thread) it is decoded, predicted and encoded. Meanwhile the request watches its
connection: a client that leaves takes its request out of the queue, or stops its prediction after the
batch of tiles running.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

import anyio
import anyio.to_thread
import numpy as np
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from pixelwise.data.bands import BandMismatch
from pixelwise.data.decode import ImageTooLargeError, header_size
from pixelwise.data.io import decode_image, encode_mask, encode_overlay
from pixelwise.errors import PixelwiseError
from pixelwise.serve.budget import request_cost
from pixelwise.serve.model import ServedPredictor, with_options
from pixelwise.serve.refusals import PREDICT_REFUSALS, Refusal, error_response, one_line
from pixelwise.serve.schema import ClassArea, Prediction, Timing
from pixelwise.serve.service import Service, current_service
from pixelwise.serve.settings import MAX_OVERLAP, MAX_TILE, MIN_TILE, Settings
from pixelwise.serve.slots import Job, JobCancelled, ServerBusy

log = logging.getLogger("pixelwise.serve")

Format = Literal["mask", "overlay", "json"]
Result = TypeVar("Result")
# what the log and an access log say of a request whose client left (nginx's "client closed request")
CLIENT_GONE = 499
# the fields a form may hold before the parser stops (400): each costs parsing; any but 'image' is refused
MAX_FIELDS = 8
QUERY_PARAMETERS = ("format", "tile", "overlap", "tta", "overlay")


@dataclass
class Outcome:
    body: bytes | Prediction
    timing: Timing


def add_predict_route(app: FastAPI, settings: Settings) -> None:
    """``POST /predict`` on ``app``, with the byte limit of ``settings`` (the route reads no more)."""
    app.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Segment an image",
        description="The mask of the uploaded image as a palette PNG of the image's size (pixel value = class "
        "index, palette = class colours); an RGB overlay PNG with format=overlay; with format=json the "
        "classes, each one's area and the mask (and with overlay=true the overlay) as base64 PNG.",
        response_model=Prediction,
        responses={200: {"content": {"image/png": {}}}, **PREDICT_REFUSALS},
        max_body_size=settings.max_upload_bytes,
        form_limits={"max_files": 1, "max_fields": MAX_FIELDS},
        # the form holds the image and nothing else (another field is refused: see unknown_fields)
        openapi_extra={
            "requestBody": {"content": {"multipart/form-data": {"schema": {"additionalProperties": False}}}}
        },
    )


async def predict(
    request: Request,
    service: Annotated[Service, Depends(current_service)],
    # an empty file is no image: the schema says so (minLength), and the answer is 415 like any non-image
    image: Annotated[
        UploadFile, File(description="The image file: PNG, JPEG, TIFF or BMP.", json_schema_extra={"minLength": 1})
    ],
    format: Annotated[Format, Query(description="mask (PNG), overlay (PNG) or json.")] = "mask",
    tile: Annotated[int | None, Query(ge=MIN_TILE, le=MAX_TILE, description="Tile size; default: the model's.")] = None,
    overlap: Annotated[
        float | None, Query(ge=0.0, le=MAX_OVERLAP, description="Tile overlap; default: the model's.")
    ] = None,
    tta: Annotated[bool | None, Query(description="Average over flips (4× the time).")] = None,
    overlay: Annotated[bool, Query(description="With format=json: also the overlay PNG.")] = False,
) -> Response:
    if message := unknown_fields(await request.form()):  # the parsed form, kept by the request
        log.warning("POST /predict 422: %s", message)
        return error_response(422, message)
    name = display_name(image.filename)
    data = await image.read()
    variant = with_options(service.predictor, tile_size=tile, overlap=overlap, tta=tta)
    slots = service.slots
    assert slots is not None, "the app's lifespan did not run"
    try:
        job = await priced_job(service, variant, data, name)
        args = (job, variant, data, name, format, overlay, service.settings.max_pixels)
        outcome, queued = await run_watched(request, job, functools.partial(slots.run, job, segment, *args))
    except ServerBusy as busy:
        log.warning("POST /predict 503: %s", busy)
        return error_response(503, str(busy), headers={"Retry-After": str(busy.retry_after)})
    except Refusal as refusal:
        log.warning("POST /predict %d: %s", refusal.status, refusal.message)
        return error_response(refusal.status, refusal.message)
    except JobCancelled:
        log.info("POST /predict %d: %s: the client left; its work stopped", CLIENT_GONE, name)
        return Response(status_code=CLIENT_GONE)  # nobody reads it: the connection is closed
    except Exception as error:  # a bug or a failing backend: the client learns that much, the log the rest
        log.error("POST /predict 500: %s: %s", name, one_line(error))
        return error_response(500, "the prediction failed inside the server; the server's log says why")
    return answer(outcome, queued, name, format)


def unknown_fields(form: FormData) -> str | None:
    """What is wrong with a form that holds more than the image, or None: ``-F format=json`` is a common slip
    for ``?format=json``, silently ignored it would answer a PNG."""
    unknown = list(dict.fromkeys(key for key in form if key != "image"))
    if not unknown:
        return None
    named = ", ".join(f"'{key}'" for key in unknown[:5])
    hints = [f"{key} is a query parameter (/predict?{key}=...)" for key in unknown if key in QUERY_PARAMETERS]
    return (
        f"/predict takes no form field {named}, only the image as 'image'"
        + (f"; {'; '.join(hints)}" if hints else "")
        + "; send the image alone (curl -F image=@photo.png)"
    )


async def priced_job(service: Service, predictor: ServedPredictor, data: bytes, name: str) -> Job:
    """The request's job, its cost counted from the image's header; a :class:`Refusal` over the budget: 422
    when the request's tiling options ask for more, 413 when the image alone does."""
    try:  # in a thread: a header is small, but a TIFF's list of pages is read whole
        height, width = await anyio.to_thread.run_sync(header_size, io.BytesIO(data), name)
    except PixelwiseError:
        return Job()  # no image, or one that cannot be read: decoding says which, in the slot
    if height * width > service.settings.max_pixels:
        return Job()  # decoding refuses it, naming the pixel cap
    tile, overlap, tta = predictor.tile_size, predictor.overlap, predictor.tta
    cost = request_cost(height, width, tile=tile, overlap=overlap, tta=tta)
    if cost.total > service.max_windows:
        options_given = predictor is not service.predictor
        raise Refusal(
            422 if options_given else 413,
            f"{name}: {width} × {height} pixels at tile {tile}, overlap {overlap:g}{' with TTA' if tta else ''} "
            f"is {cost.windows:,} tiles × {cost.passes} passes = {cost.total:,}, over the budget of "
            f"{service.max_windows:,} per request; "
            + ("use a larger tile, less overlap or no TTA" if options_given else "send a smaller image"),
        )
    return Job(cost.total, cost.windows)


async def run_watched(request: Request, job: Job, work: Callable[[], Awaitable[Result]]) -> Result:
    """``await work()`` while watching the connection: when the client leaves, ``job`` is cancelled (a
    waiting job leaves the queue at once, a running one stops at its next check) and :class:`JobCancelled`
    is raised here. When the request itself is cancelled (the server shuts down), the job is cancelled too,
    so that shutting down does not wait for a long prediction."""
    result: list[Result] = []
    failure: Exception | None = None

    async def watch() -> None:
        try:
            # the body is read: the next message the server sends the app is the client's disconnection
            while (await request.receive())["type"] != "http.disconnect":
                pass
        except anyio.get_cancelled_exc_class():
            if not result and failure is None:  # the server stops (Ctrl-C): the work stops too
                job.cancel()
            raise
        job.cancel()
        tasks.cancel_scope.cancel()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        try:
            result.append(await work())
        except Exception as error:  # raised after the group: an exception inside it would come out grouped
            failure = error
        tasks.cancel_scope.cancel()
    if job.cancelled:
        raise JobCancelled
    if failure is not None:
        raise failure
    return result[0]


def segment(
    job: Job, predictor: ServedPredictor, data: bytes, name: str, format: Format, with_overlay: bool, max_pixels: int
) -> Outcome:
    """Decode, predict and encode one upload (in a worker thread); refusals as :class:`Refusal`."""
    job.check()  # a client gone while its request waited: no work at all
    started = time.perf_counter()
    try:
        # a model of bands reads an upload as it read its training images (data.bands)
        input_bands = getattr(getattr(predictor, "spec", None), "input_bands", None)
        image = decode_image(data, name, max_pixels=max_pixels, input_bands=input_bands)
    except ImageTooLargeError as error:
        raise Refusal(413, str(error)) from None
    except BandMismatch as error:  # an image, but without the bands the model reads
        raise Refusal(422, str(error)) from None
    except PixelwiseError as error:
        raise Refusal(415, str(error)) from None
    decoded = time.perf_counter()
    try:
        labels = predictor.predict_labels(image, progress=job.tiles_done)
    except PixelwiseError as error:  # e.g. an RGB image for a model of two channels
        raise Refusal(422, f"{name}: {error}") from None
    predicted = time.perf_counter()
    classes = predictor.classes
    if format == "overlay":
        body: bytes | Prediction = encode_overlay(image, labels, classes)
    elif format == "mask":
        body = encode_mask(labels, classes)
    else:
        body = prediction_body(predictor, image, labels, with_overlay=with_overlay)
    encoded = time.perf_counter()
    timing = Timing(
        queued=0.0,
        decode=round(decoded - started, 4),
        predict=round(predicted - decoded, 4),
        encode=round(encoded - predicted, 4),
    )
    return Outcome(body, timing)


def prediction_body(
    predictor: ServedPredictor, image: np.ndarray, labels: np.ndarray, *, with_overlay: bool
) -> Prediction:
    """The JSON answer: each class's area, the mask (and the overlay) as base64 PNG, the tiling used."""
    classes = predictor.classes
    height, width = labels.shape
    counts = np.bincount(labels.ravel(), minlength=classes.num_classes)
    overlay = encode_overlay(image, labels, classes) if with_overlay else None
    return Prediction(
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
        overlay_png=base64.b64encode(overlay).decode("ascii") if overlay is not None else None,
        tile_size=predictor.tile_size,
        overlap=predictor.overlap,
        tta=predictor.tta,
        seconds=Timing(queued=0.0, decode=0.0, predict=0.0, encode=0.0),  # known once encoded
    )


def answer(outcome: Outcome, queued: float, name: str, format: Format) -> Response:
    """The 200 answer: the PNG (named after the upload) or the JSON, with the time of each step."""
    outcome.timing.queued = round(queued, 4)
    timing = {"Server-Timing": ", ".join(f"{key};dur={1000 * value:.1f}" for key, value in outcome.timing)}
    if isinstance(outcome.body, Prediction):
        outcome.body.seconds = outcome.timing
        return JSONResponse(outcome.body.model_dump(), headers=timing)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit(".", 1)[0])[:80] or "image"
    headers = {"Content-Disposition": f'inline; filename="{stem}_{format}.png"', **timing}
    return Response(outcome.body, media_type="image/png", headers=headers)


def display_name(filename: str | None) -> str:
    """The upload's file name for messages: no folders, no control characters, not endless."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable())[:120]
    return name or "upload"
