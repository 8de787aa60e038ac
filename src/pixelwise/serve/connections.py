"""Guards on connections that uvicorn lacks: a deadline for a request's headers and a cap on open connections.

uvicorn's HTTP/1.1 protocol (h11) closes an idle keep-alive connection after ``timeout_keep_alive``, but
that timer starts only after a response and any byte received stops it: a client that opens a connection
and sends nothing, or half a header line now and then, holds it for ever. Here a connection waiting for a
request's headers gets ``header_timeout`` seconds in all, however it trickles them; then 408 (when part of
a request came) and the connection is closed. A stalled *body* is the app's guard
(:class:`pixelwise.serve.guards.BodyTimeout`), which sees each read.

A request on a connection beyond ``max_connections`` gets 503 with Retry-After (idle keep-alive connections
close within ``timeout_keep_alive``, freeing places), after its body is read and dropped: a server that
closes a connection holding unread bytes resets it, and the client would see the reset, not the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import anyio
import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from pixelwise.serve.refusals import error_response
from pixelwise.serve.settings import Settings

log = logging.getLogger("pixelwise.serve")


def guarded_protocol(settings: Settings, *, keep_alive: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with the guards of ``settings`` (pass it as ``uvicorn.Config(http=...)``)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
            "max_connections": settings.max_connections,
            "max_upload_bytes": settings.max_upload_bytes,
            "retry_after": max(1, round(keep_alive)),
        },
    )


class GuardedH11Protocol(H11Protocol):
    header_timeout = 30.0
    body_timeout = 30.0
    max_connections = 64
    max_upload_bytes = 50 * 1024 * 1024
    retry_after = 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the request before the one whose headers are awaited
        self.app = self._capped(self.app)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self.cycle is not self._waiting_after:
            self._stop_header_timer()  # a new request's headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # after a pipelined request the next one may be running already: only an idle connection waits
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._stop_header_timer()
        self._waiting_after = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.cycle is not self._waiting_after:
            return
        received, _ = self.conn.trailing_data
        if received:  # part of a request came: say why it is closed (h11 cannot, no request was parsed)
            message = f"no complete request headers within {self.header_timeout:g} s; the connection is closed"
            log.warning("408: %s", message)
            body = json.dumps({"error": message}).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are no HTTP request, in JSON like every other refusal."""
        message = f"not an HTTP/1.1 request ({msg.rstrip('.').lower()}); the connection is closed"
        body = json.dumps({"error": message}).encode()
        # the length said: a client need not wait for the close to know the body is whole
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body)):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()

    def _capped(self, app: ASGIApp) -> ASGIApp:
        async def capped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and len(self.connections) > self.max_connections:
                message = (
                    f"the server holds its limit of {self.max_connections} connections; retry in {self.retry_after} s"
                )
                log.warning("%s %s 503: %s", scope["method"], scope["path"], message)
                await self._drain(receive)
                headers = {"Retry-After": str(self.retry_after), "Connection": "close"}
                await error_response(503, message, headers=headers)(scope, receive, send)
                return
            await app(scope, receive, send)

        return capped

    async def _drain(self, receive: Receive) -> None:
        """Read and drop a refused request's body: up to the upload limit, each part within the body timeout."""
        read = 0
        message: Message = {"more_body": True}
        while message.get("more_body", False) and read <= self.max_upload_bytes:
            with anyio.move_on_after(self.body_timeout) as deadline:
                message = await receive()
            if deadline.cancelled_caught:
                return
            read += len(message.get("body", b""))
