"""The answers of the web service as pydantic models: what ``/openapi.json`` documents and clients rely on."""

from __future__ import annotations

from pydantic import BaseModel


class ClassInfo(BaseModel):
    index: int
    name: str
    color: tuple[int, int, int]


class Limits(BaseModel):
    """What one request may ask: bytes, pixels, tiles × TTA passes (``max_windows``), the tile and overlap
    ranges; and how long a client may take to send its headers and between two parts of its upload."""

    max_upload_bytes: int
    max_pixels: int
    max_windows: int
    tile: tuple[int, int]
    overlap: tuple[float, float]
    header_timeout: float
    body_timeout: float
    max_connections: int


class ModelInfo(BaseModel):
    name: str
    backend: str
    classes: list[ClassInfo]
    in_channels: int
    tile_size: int
    overlap: float
    tta: bool
    slots: int
    queue: int
    threads: int
    limits: Limits


class ClassArea(ClassInfo):
    pixels: int
    percent: float


class Timing(BaseModel):
    """Seconds spent waiting for a slot, decoding the upload, predicting and encoding the answer."""

    queued: float
    decode: float
    predict: float
    encode: float


class Prediction(BaseModel):
    width: int
    height: int
    classes: list[ClassArea]
    mask_png: str
    overlay_png: str | None = None
    tile_size: int
    overlap: float
    tta: bool
    seconds: Timing


class ErrorBody(BaseModel):
    error: str


class Status(BaseModel):
    status: str
