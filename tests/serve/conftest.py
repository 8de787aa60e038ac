"""The service over a tiny real model: a width-4, depth-2 U-Net with random weights (what is tested is the
service, not the segmentation) and the quokka classes, so that legend and colours are the real ones."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="pixelwise serve needs the 'serve' extra: pip install 'pixelwise[serve]'")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pixelwise.data.builtin.base import ASSETS
from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
from pixelwise.serve import Settings, create_app

QUOKKA_JPEG = ASSETS / "quokka" / "quokka.jpg"


def tiny_predictor(in_channels: int = 3):  # type: ignore[no-untyped-def]
    import torch

    from pixelwise.inference import InferenceSpec, Predictor, TorchBackend
    from pixelwise.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet-small", num_classes=2, in_channels=in_channels, width=4, depth=2)
    spec = InferenceSpec(
        model="unet-small",
        classes=QUOKKA_CLASSES,
        mean=[0.5] * in_channels,
        std=[0.25] * in_channels,
        in_channels=in_channels,
        tile_size=64,
        stride=model.stride,
    )
    return Predictor(TorchBackend(model), spec)


def wait_ready(client: TestClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the service did not become ready"
        time.sleep(0.02)


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def predictor():  # type: ignore[no-untyped-def]
    return tiny_predictor()


@pytest.fixture
def app(predictor) -> FastAPI:  # type: ignore[no-untyped-def]
    return create_app(predictor, Settings(model_name="tiny.pt", max_upload_mb=2, max_megapixels=1))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture
def encode_png():  # type: ignore[no-untyped-def]
    """``encode_png(pixels)``: the bytes of a PNG file of a uint8 array (helpers reach tests as fixtures)."""
    return png_bytes


@pytest.fixture
def photo() -> bytes:
    """The built-in quokka photo, a real 960 × 643 RGB JPEG."""
    return QUOKKA_JPEG.read_bytes()


@pytest.fixture
def rgb_png() -> bytes:
    return png_bytes(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8))


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A checkpoint file of the tiny model, as ``pixelwise train`` writes it."""
    from pixelwise.checkpoint import Checkpoint, Normalization, save_checkpoint

    model = tiny_predictor().backend.model
    path = tmp_path / "run" / "best.pt"
    save_checkpoint(
        path,
        Checkpoint(
            model="unet-small",
            model_options={"width": 4, "depth": 2},
            state_dict=model.state_dict(),
            classes=QUOKKA_CLASSES,
            normalization=Normalization((0.5,) * 3, (0.25,) * 3),
            in_channels=3,
            tile_size=64,
        ),
    )
    return path


def read_http_answer(connection: socket.socket) -> tuple[str, bytes]:
    """One HTTP response from a raw socket: its head, and as many body bytes as it declares."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection without an answer (after {data!r})"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    while lengths and len(body) < int(lengths[0]):
        body += connection.recv(65536)
    return head.decode("latin-1"), body


@pytest.fixture
def read_answer():  # type: ignore[no-untyped-def]
    """``read_answer(connection)``: the (head, body) of one HTTP response read from a raw socket."""
    return read_http_answer


@pytest.fixture
def connect():  # type: ignore[no-untyped-def]
    """``connect(url)``: a raw TCP connection to the server at ``url`` (a context manager), 10 s timeout."""

    def open_connection(url: str) -> socket.socket:
        address = urlparse(url)
        assert address.hostname is not None and address.port is not None
        return socket.create_connection((address.hostname, address.port), timeout=10)

    return open_connection
