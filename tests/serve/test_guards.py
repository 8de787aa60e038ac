"""A stalled upload over a raw socket: 408 in JSON after the body timeout, the connection closed, and the
temporary file that held its first megabytes released."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pixelwise.serve import Settings, create_app
from pixelwise.serve.server import running_server

BODY_TIMEOUT = 2.0  # long enough to see the temporary file before the guard drops the client
SLACK = 5.0


def open_temporary_files() -> list[str]:
    """The files under the temporary folder that this process holds open (the server runs in a thread)."""
    folder = os.path.realpath(tempfile.gettempdir())
    found = []
    for descriptor in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:  # closed between the listing and the look
            continue
        if target.startswith(folder + "/"):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc (Linux)")
def test_a_stalled_upload_gets_408_and_its_temporary_file_is_released(
    predictor, connect: Any, read_answer: Any
) -> None:  # type: ignore[no-untyped-def]
    app = create_app(predictor, Settings(body_timeout=BODY_TIMEOUT, max_upload_mb=4))
    part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
    sent = part + b"\0" * 1_500_000  # past the 1 MB that the form parser keeps in memory
    before = open_temporary_files()
    with running_server(app) as url, connect(url) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (3_000_000, sent)
        )
        deadline = time.monotonic() + BODY_TIMEOUT
        while len(open_temporary_files()) <= len(before):  # the upload spilled to disk
            assert time.monotonic() < deadline, "no temporary file for a 1.5 MB upload"
            time.sleep(0.01)
        stalled = time.monotonic()
        head, body = read_answer(connection)  # and then nothing more is sent
        assert time.monotonic() - stalled < BODY_TIMEOUT + SLACK
        assert head.startswith("HTTP/1.1 408 ")
        assert "connection: close" in head.lower()
        assert json.loads(body) == {
            "error": f"the upload stalled: nothing came for {BODY_TIMEOUT:g} s; the connection is closed"
        }
        assert connection.recv(1024) == b""
        deadline = time.monotonic() + SLACK
        while len(open_temporary_files()) > len(before):
            assert time.monotonic() < deadline, f"still open: {open_temporary_files()}"
            time.sleep(0.01)


def test_an_upload_that_keeps_coming_is_not_cut_by_the_body_timeout(
    predictor, encode_png, connect: Any, read_answer: Any
) -> None:  # type: ignore[no-untyped-def]
    """The body timeout is for each read, not the whole upload: a slow client that keeps sending gets its answer."""
    import numpy as np

    app = create_app(predictor, Settings(body_timeout=0.5))
    image = encode_png(np.zeros((20, 30, 3), np.uint8))
    body = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + image + b"\r\n--b--\r\n"
    with running_server(app) as url, connect(url) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        pieces = [body[index : index + len(body) // 4 + 1] for index in range(0, len(body), len(body) // 4 + 1)]
        for piece in pieces:  # 4 pieces 0.3 s apart: 1.2 s in all, each gap within the 0.5 s
            time.sleep(0.3)
            connection.sendall(piece)
        head, _ = read_answer(connection)
    assert head.startswith("HTTP/1.1 200 ")
