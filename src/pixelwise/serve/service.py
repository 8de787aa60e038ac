"""What a running service knows, in one record that every endpoint reads (``app.state.service``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from pixelwise.serve.budget import default_budget
from pixelwise.serve.model import ServedPredictor, backend_name
from pixelwise.serve.schema import ClassInfo, Limits, ModelInfo
from pixelwise.serve.settings import MAX_OVERLAP, MAX_TILE, MIN_TILE, Settings
from pixelwise.serve.slots import InferenceSlots


@dataclass
class Service:
    """The model, the settings, the request budget (tiles × passes), the slots (made in the app's lifespan,
    inside the running event loop) and why the service is not ready, if it is not."""

    predictor: ServedPredictor
    settings: Settings
    max_windows: int
    model_info: ModelInfo
    slots: InferenceSlots | None = None
    not_ready: str | None = "warming up"

    @classmethod
    def of(cls, predictor: ServedPredictor, settings: Settings) -> Service:
        max_windows = settings.max_windows or default_budget(
            settings.max_pixels, tile=predictor.tile_size, overlap=predictor.overlap, tta=predictor.tta
        )
        classes = predictor.classes
        model_info = ModelInfo(
            name=settings.model_name,
            backend=backend_name(predictor),
            classes=[
                ClassInfo(index=index, name=name, color=color)
                for index, (name, color) in enumerate(zip(classes.names, classes.colors, strict=True))
            ],
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
                max_windows=max_windows,
                tile=(MIN_TILE, MAX_TILE),
                overlap=(0.0, MAX_OVERLAP),
                header_timeout=settings.header_timeout,
                body_timeout=settings.body_timeout,
                max_connections=settings.max_connections,
            ),
        )
        return cls(predictor, settings, max_windows, model_info)


def current_service(request: Request) -> Service:
    """The service of the app that answers ``request`` (a FastAPI dependency)."""
    service: Service = request.app.state.service
    return service
