"""Uploads that are not what they should be: each gets the right status and one clear JSON line.

Decisions: a 16-bit TIFF is an image like any other (the data layer scales it by its robust range, as
``pixelwise predict`` does: the built-in nuclei image is one), so it is segmented (200). An RGBA PNG is
segmented with its alpha dropped, as the data layer reads it. Formats beyond PNG, JPEG, TIFF and BMP are
refused (415) even when Pillow could open them.
"""

from __future__ import annotations

import io
import socket
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image

from pixelwise.data.builtin.base import ASSETS
from pixelwise.data.io import read_image
from pixelwise.serve import Settings, create_app
from pixelwise.serve.server import running_server

NUCLEI_TIFF = ASSETS / "nuclei" / "img2d.tif"


def post(client: TestClient, data: bytes, name: str = "upload.png", field: str = "image") -> Any:
    return client.post("/predict", files={field: (name, data, "application/octet-stream")})


def read_answer(connection: socket.socket) -> str:
    """One HTTP response from a raw socket: the head, then as many body bytes as it declares."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def assert_refused(answer: Any, status: int, *words: str) -> str:
    """The answer is ``status`` with a body of exactly one key, ``error``: one line, no traceback."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["error"]
    message: str = body["error"]
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message
    return message


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG of a ``width`` × ``height`` RGB image, with one row of its pixels: a header and almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + 3 * width))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def test_no_body_at_all_names_the_missing_field(client: TestClient) -> None:
    assert_refused(client.post("/predict"), 422, "no file in the multipart field 'image'")


def test_an_empty_file(client: TestClient) -> None:
    assert_refused(post(client, b"", "empty.png"), 415, "empty.png: the file is empty (0 bytes)")


def test_a_truncated_png(client: TestClient, encode_png) -> None:  # type: ignore[no-untyped-def]
    data = encode_png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert_refused(post(client, data[:300], "cut.png"), 415, "cut.png: cannot read the image (", "truncated")


def test_a_text_file_named_png(client: TestClient) -> None:
    message = assert_refused(post(client, b"hello, I am not a picture\n", "notes.png"), 415)
    assert message == (
        "notes.png: cannot read the image (not a PNG, JPEG, BMP or TIFF image); the file is damaged or not an image"
    )


def test_a_format_pillow_knows_but_pixelwise_does_not_take(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="GIF")
    assert_refused(post(client, buffer.getvalue(), "red.gif"), 415, "not a PNG, JPEG, BMP or TIFF image")


def test_a_16_bit_tiff_is_segmented_like_the_file(client: TestClient, predictor) -> None:  # type: ignore[no-untyped-def]
    """The real 16-bit nuclei image (grey; the model is RGB, so the grey channel is repeated)."""
    with tifffile.TiffFile(NUCLEI_TIFF) as tiff:
        assert tiff.series[0].dtype == np.uint16
    with pytest.warns(UserWarning, match="repeating the grey channel"):
        answer = post(client, NUCLEI_TIFF.read_bytes(), "nuclei.tif")
        expected = predictor.predict_labels(read_image(NUCLEI_TIFF))
    assert answer.status_code == 200, answer.text
    with Image.open(io.BytesIO(answer.content)) as mask:
        np.testing.assert_array_equal(np.asarray(mask), expected)


def test_a_4_channel_png_is_segmented_without_its_alpha(client: TestClient, encode_png) -> None:  # type: ignore[no-untyped-def]
    rgb = np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((40, 52), 7, np.uint8)])
    with_alpha = post(client, encode_png(rgba), "rgba.png")
    assert with_alpha.status_code == 200
    assert with_alpha.content == post(client, encode_png(rgb), "rgb.png").content


def test_a_5_channel_tiff(client: TestClient) -> None:
    """Five bands are an image (multispectral), but not one for this RGB model: 422."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((5, 16, 16), np.uint8), photometric="minisblack", planarconfig="separate")
    answer = post(client, buffer.getvalue(), "bands.tif")
    assert_refused(answer, 422, "bands.tif: the image has 5 channels but the model was trained on 3")


def test_an_image_over_the_pixel_cap_names_the_cap(client: TestClient, encode_png) -> None:  # type: ignore[no-untyped-def]
    data = encode_png(np.zeros((900, 1200, 3), np.uint8))  # 1.08 megapixels; the fixture's cap is 1
    assert_refused(
        post(client, data, "wide.png"), 413, "wide.png: 1200 × 900 pixels", "over the limit of 1,000,000 pixels"
    )


def test_the_pixel_cap_is_checked_on_the_header_before_decoding(client: TestClient) -> None:
    """A header claiming 40000 × 30000 pixels with no data: decoding would fail as truncated; it is never tried."""
    message = assert_refused(post(client, png_header_claiming(9000, 9000), "bomb.png"), 413)
    assert message.startswith("bomb.png: 9000 × 9000 pixels (81.0 megapixels) is over the limit of 1,000,000 pixels")
    # past Pillow's own "decompression bomb" limit (179 megapixels), which pixelwise replaces: the same answer
    message = assert_refused(post(client, png_header_claiming(40000, 30000), "huge.png"), 413)
    assert message.startswith("huge.png: 40000 × 30000 pixels (1200.0 megapixels) is over the limit of 1,000,000")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((2000, 2000), np.uint8))
    cut = buffer.getvalue()[:2000]  # the header and the layout, no pixels
    assert_refused(post(client, cut, "cut.tif"), 413, "cut.tif: 2000 × 2000 pixels")


def test_a_wrong_field_name(client: TestClient, rgb_png: bytes) -> None:
    message = assert_refused(post(client, rgb_png, field="file"), 422)
    assert message == (
        "no file in the multipart field 'image'; send the image as the form field 'image' (curl -F image=@photo.png)"
    )


def test_an_image_the_model_cannot_take(encode_png) -> None:  # type: ignore[no-untyped-def]
    """A colour photo for a model of two input channels: 422, the image is fine but not for this model."""
    import torch

    from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
    from pixelwise.inference import InferenceSpec, Predictor, TorchBackend
    from pixelwise.models.registry import create_model

    model = create_model("unet-small", num_classes=2, in_channels=2, width=4, depth=2)
    spec = InferenceSpec(
        model="unet-small", classes=QUOKKA_CLASSES, mean=[0.5, 0.5], std=[0.25, 0.25], in_channels=2, tile_size=64
    )
    two_channels = Predictor(TorchBackend(model), spec)
    with torch.no_grad(), TestClient(create_app(two_channels)) as client:
        answer = post(client, encode_png(np.zeros((20, 20, 3), np.uint8)), "photo.png")
    assert_refused(answer, 422, "photo.png: the image has 3 channels but the model was trained on 2")


def test_an_upload_over_the_byte_limit(client: TestClient) -> None:
    answer = post(client, b"\0" * (3 * 1024 * 1024), "huge.png")  # the fixture's limit is 2 MB
    assert_refused(answer, 413, "the upload is 3.0 MB, over the limit of 2 MB")


def test_the_byte_limit_answers_before_the_body_is_sent(predictor, checkpoint: Path) -> None:  # type: ignore[no-untyped-def]
    """Over a real socket: a request declaring 100 MB gets its 413 though not one byte of the body was sent,
    and a body sent in chunks without a declared length is cut off once it passes the limit."""
    app = create_app(predictor, Settings(max_upload_mb=1))
    with running_server(app) as url:
        address = urlparse(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
            connection.sendall(
                b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 104857600\r\n\r\n"
            )
            head = read_answer(connection)
        assert head.startswith("HTTP/1.1 413 ")
        assert head.endswith('{"error":"the upload is 100.0 MB, over the limit of 1 MB; send a smaller file"}')

        with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
            connection.sendall(
                b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
            connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            chunk = b"\0" * 65536
            for _ in range(24):  # 1.5 MB, past the 1 MB limit
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            answer = read_answer(connection)
        assert answer.startswith("HTTP/1.1 413 ")
        assert answer.endswith('{"error":"the upload is over the limit of 1 MB; send a smaller file"}')
