"""Stalled and surplus connections over raw sockets against a real server: a client that sends nothing, or
trickles its headers, is dropped after the header timeout; a connection beyond the cap gets 503 in JSON,
read whole (its upload drained first, so that no reset swallows the answer)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from typing import Any
from urllib.parse import urlparse

import pytest

from pixelwise.serve import Settings, create_app
from pixelwise.serve.server import running_server

HEADER_TIMEOUT = 0.5
# a loaded machine answers late: what must happen within the timeout may take this long
SLACK = 5.0


def trickle_until_answered(connection: socket.socket, seconds: float) -> float:
    """Send one byte of a header line every 50 ms until the server answers or closes; the seconds it took."""
    began = time.monotonic()
    connection.sendall(b"X-Slow: ")
    while time.monotonic() - began < seconds:
        readable, _, _ = select.select([connection], [], [], 0.05)
        if readable:
            return time.monotonic() - began
        try:
            connection.sendall(b"a")
        except OSError:  # closed under our feet: that is an answer too
            return time.monotonic() - began
    raise AssertionError(f"the server kept a trickling client for {seconds} s")


def test_a_client_that_sends_nothing_is_dropped(predictor, connect: Any) -> None:  # type: ignore[no-untyped-def]
    app = create_app(predictor, Settings(header_timeout=HEADER_TIMEOUT))
    with running_server(app) as url, connect(url) as connection:
        began = time.monotonic()
        assert connection.recv(1024) == b""  # closed, nothing said: no request was begun
        assert HEADER_TIMEOUT * 0.8 <= time.monotonic() - began < HEADER_TIMEOUT + SLACK


@pytest.mark.parametrize("first", [False, True], ids=["new connection", "after a keep-alive answer"])
def test_headers_trickled_byte_by_byte_get_408_and_the_connection_closes(
    predictor, connect: Any, read_answer: Any, first: bool
) -> None:  # type: ignore[no-untyped-def]
    """uvicorn's keep-alive timer stops at any byte received: without a deadline of its own, a byte every
    50 ms would hold the connection for ever."""
    app = create_app(predictor, Settings(header_timeout=HEADER_TIMEOUT))
    with running_server(app) as url, connect(url) as connection:
        if first:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            head, body = read_answer(connection)
            assert head.startswith("HTTP/1.1 200 ") and json.loads(body) == {"status": "ok"}
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        seconds = trickle_until_answered(connection, HEADER_TIMEOUT + 2 * SLACK)
        assert seconds < HEADER_TIMEOUT + SLACK
        head, body = read_answer(connection)
        assert head.startswith("HTTP/1.1 408 ")
        assert "connection: close" in head.lower()
        assert json.loads(body) == {
            "error": f"no complete request headers within {HEADER_TIMEOUT:g} s; the connection is closed"
        }
        assert connection.recv(1024) == b""


def test_connections_beyond_the_cap_get_503_in_json_and_the_places_come_back(predictor, connect: Any) -> None:  # type: ignore[no-untyped-def]
    app = create_app(predictor, Settings(max_connections=2))
    body = b"\0" * 8_000_000  # more than the sockets buffer: unread, it would end in a reset, not the answer
    with running_server(app) as url:
        address = urlparse(url)

        def post() -> tuple[int, dict[str, str], Any]:
            client = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            try:
                client.request(
                    "POST", "/predict", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
                )
                answer = client.getresponse()
                return (
                    answer.status,
                    {key.lower(): value for key, value in answer.getheaders()},
                    json.loads(answer.read()),
                )
            finally:
                client.close()

        idle = [connect(url), connect(url)]  # two clients that hold their connections and send nothing
        try:
            deadline = time.monotonic() + SLACK
            while (answer := post())[0] != 503:  # until the server has taken both idle connections in
                assert time.monotonic() < deadline, f"no 503 with 2 of 2 connections taken: {answer}"
                time.sleep(0.02)
            _, headers, error = answer
            assert error == {"error": "the server holds its limit of 2 connections; retry in 5 s"}
            assert headers["retry-after"] == "5" and headers["connection"] == "close"
        finally:
            for connection in idle:
                connection.close()
        deadline = time.monotonic() + SLACK
        while (status := post()[0]) == 503:
            assert time.monotonic() < deadline, "the places of closed connections did not come back"
            time.sleep(0.02)
        assert status == 400  # through to the app again: a body that is no form


def test_bytes_that_are_no_http_request_get_400_in_json(predictor, connect: Any, read_answer: Any) -> None:  # type: ignore[no-untyped-def]
    with running_server(create_app(predictor)) as url, connect(url) as connection:
        connection.sendall(b"HELLO THERE\r\n\r\n")
        head, body = read_answer(connection)
    assert head.startswith("HTTP/1.1 400 ")
    assert "content-type: application/json" in head.lower()
    message = json.loads(body)["error"]
    assert message.startswith("not an HTTP/1.1 request (") and message.endswith("); the connection is closed")
