"""How the service runs: every limit ``pixelwise serve``'s flags set, in one record, checked once."""

from __future__ import annotations

from dataclasses import dataclass

from pixelwise.errors import PixelwiseError

# per-request tiling within these bounds: a tile's activations must fit in memory, and overlap o costs
# 1 / (1 - o)² forward passes per pixel (16× at 0.75)
MIN_TILE, MAX_TILE = 32, 1024
MAX_OVERLAP = 0.75


@dataclass(frozen=True)
class Settings:
    """How the service runs. ``model_name`` is what the page and ``/model`` call the model (its file name).

    ``max_windows`` is a request's budget of tiles × TTA passes (None: what the largest image accepted costs
    at the model's own tile size, overlap and TTA, so that every request without tiling options passes).
    ``header_timeout``: seconds a client has to send a request's headers, from the moment the server waits
    for them; ``body_timeout``: seconds the upload may stall between two reads. ``max_connections``: open
    connections at most; a request on a connection beyond them gets 503.
    """

    model_name: str = "model"
    max_upload_mb: float = 50.0
    max_megapixels: float = 25.0
    slots: int = 1
    queue: int = 4
    threads: int = 1
    max_windows: int | None = None
    header_timeout: float = 30.0
    body_timeout: float = 30.0
    max_connections: int = 64

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_megapixels", "header_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise PixelwiseError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name, low in (("slots", 1), ("queue", 0), ("threads", 1), ("max_connections", 1)):
            if getattr(self, name) < low:
                raise PixelwiseError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.max_windows is not None and self.max_windows < 1:
            raise PixelwiseError(f"--max-windows must be at least 1, got {self.max_windows}")

    @property
    def max_upload_bytes(self) -> int:
        return round(self.max_upload_mb * 1024 * 1024)

    @property
    def max_pixels(self) -> int:
        return round(self.max_megapixels * 1_000_000)
